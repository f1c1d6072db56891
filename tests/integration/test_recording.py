"""Recording what the poller read, on both databases: text PostgreSQL refuses never fails a batch, and a batch whose
commit fails is recorded message by message, so one poison message never takes the others with it."""

from __future__ import annotations

from sqlmodel import Session, select

from service.intake.imap import PROCESSED
from service.models import InboundMessage, Outcome
from service.pipeline import process as pipeline
from service.pipeline.polling import poller
from tests.mail import recap


def with_nul(n: int, *, raw: bool = False) -> bytes:
    """A recap whose body holds a NUL: quoted-printable `=00`, or (raw=True) a NUL byte in the body and subject."""
    mail = recap(n)
    if raw:
        return mail.replace(b"Hi Jane,", b"Hi Jane,\x00").replace(f"#{n}\n".encode(), f"#{n}\x00\n".encode(), 1)
    return mail.replace(b"Hi Jane,", b"Hi Jane,=00")


def with_lone_surrogate(n: int) -> bytes:
    """A UTF-7 subject and body: Python decodes `+2AA-` to a lone surrogate, which no database driver encodes."""
    mail = recap(n).replace(f"Subject: Our meeting #{n}".encode(), b"Subject: =?utf-7?Q?Our_meeting_+2AA-?=")
    return mail.replace(b'charset="utf-8"', b'charset="utf-7"').replace(b"Hi Jane,", b"Hi Jane +2AA-,")


def _rows(engine) -> list[InboundMessage]:
    with Session(engine) as session:
        return list(session.exec(select(InboundMessage).order_by(InboundMessage.id)))


def _notes(engine) -> list[str]:
    with Session(engine) as session:
        return [o.note for o in session.exec(select(Outcome).order_by(Outcome.id))]


def test_a_nul_byte_in_one_recap_never_fails_the_three_others_of_its_batch(imap, engine, settings, reps):
    for n in (1, 2, 3):
        imap.append("INBOX", recap(n))
    imap.append("INBOX", with_nul(4))
    stats = poller(settings, engine).poll_once()
    assert (stats.processed, stats.failed) == (4, 0)
    rows = _rows(engine)
    assert [(r.message_id, r.status) for r in rows] == [(f"<recap-{n}@mail.acme.example>", "processed")
                                                          for n in (1, 2, 3, 4)]
    assert {r.folder for r in rows} == {PROCESSED}
    assert b"Hi Jane,=00" in rows[3].raw  # the raw bytes keep what was sent; only the text lost its NUL
    assert len(_notes(engine)) == 4 and not any("\x00" in note for note in _notes(engine))


def test_a_raw_nul_and_a_lone_surrogate_are_recorded_as_text_the_database_takes(imap, engine, settings, reps):
    imap.append("INBOX", with_nul(1, raw=True))
    imap.append("INBOX", with_lone_surrogate(2))
    imap.append("INBOX", recap(3))
    poller(settings, engine).poll_once()
    rows = _rows(engine)
    assert [r.status for r in rows] == ["processed"] * 3
    assert not any("\x00" in rows[0].reading[field] for field in ("subject", "note"))
    assert "\ufffd" in rows[1].reading["subject"] and "\ufffd" in rows[1].reading["note"]


def test_a_batch_whose_commit_fails_is_recorded_message_by_message(imap, engine, settings, reps, monkeypatch):
    real_record = pipeline.record_outcomes

    def record_or_choke(session, settings, accepted):
        if any(reading.subject == "POISON" for _, reading in accepted):
            raise RuntimeError("simulated recording bug")  # a bug cannot be summoned by real input on purpose
        return real_record(session, settings, accepted)

    monkeypatch.setattr(pipeline, "record_outcomes", record_or_choke)
    for n in (1, 2, 3):
        imap.append("INBOX", recap(n))
    imap.append("INBOX", recap(4, subject="POISON"))
    mailbox = poller(settings, engine)
    stats = mailbox.poll_once()
    assert (stats.processed, stats.failed) == (3, 1)
    assert [(r.status, r.attempts) for r in _rows(engine)] == [("processed", 0)] * 3 + [("new", 1)]
    mailbox.poll_once()
    mailbox.poll_once()
    poison = _rows(engine)[3]
    assert (poison.status, poison.attempts) == ("quarantined", 3)
    assert "simulated recording bug" in poison.reason
    assert len(_notes(engine)) == 3
