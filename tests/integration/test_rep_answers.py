"""Reps answer Keepwarm by replying to its summary: confirm, stop, move the recontact, in plain words.

Real Dovecot, poller, Redis, RQ worker and SMTP catcher: the summary goes out, the rep's reply arrives in the
mailbox, the poller reads it as an answer about that outcome, the pipeline applies it and a short reply goes back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from service.models import InboundMessage, Outcome
from service.pipeline.replies import STOPPED
from tests.integration.test_held import always_hold  # noqa: F401  (a fixture)
from tests.integration.test_intake_trust import SPOOFED
from tests.integration.test_outbox import ingest, rows, work
from tests.mail import recap

LOST = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n"
TOM = "Tom Baker <tom.baker@acme.example>"


def _summary(smtp):
    return next(c.message for c in smtp.caught if c.message["To"].endswith("tom.baker@acme.example>")
                and "Keepwarm:" in c.message["Subject"])


def _reply(settings, summary, body: str, *, sender: str = TOM, message_id: str | None = None) -> bytes:
    """The rep's reply as a mail client writes it: threaded to the summary, the summary quoted below."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"Keepwarm <{settings.intake_address}>"
    message["Subject"] = f"Re: {summary['Subject']}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain="mail.acme.example")
    message["In-Reply-To"] = summary["Message-ID"]
    message["References"] = summary["Message-ID"]
    quoted = "\n".join(f"> {line}" for line in summary.get_body(("plain",)).get_content().splitlines()[:8])
    message.set_content(f"{body}\n\nOn {format_datetime(datetime.now(UTC))}, Keepwarm wrote:\n{quoted}\n")
    return message.as_bytes()


def _customer_statuses(engine) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in rows(engine):
        if row.customer_id is not None:
            found.setdefault(row.kind, set()).add(row.status)
    return found


def _answer_replies(smtp) -> list[str]:
    return [c.message.get_body(("plain",)).get_content() for c in smtp.caught
            if c.message["Subject"].startswith("Re: Keepwarm:")]


@pytest.fixture
def held(imap, settings, engine, reps, redis, smtp, always_hold):  # noqa: F811
    """A lost meeting whose customer emails wait for the rep; the summary sent. Returns the summary."""
    ingest(imap, settings, engine, recap(1, body=LOST, date=datetime.now(UTC) - timedelta(days=2)))
    work(redis)
    assert _customer_statuses(engine) == {"thank_you": {"held"}, "recontact": {"held"}}
    return _summary(smtp)


@pytest.fixture
def planned(imap, settings, engine, reps, redis, smtp):
    """A lost meeting whose customer emails are scheduled; the summary sent. Returns the summary."""
    ingest(imap, settings, engine, recap(1, body=LOST, date=datetime.now(UTC)))
    work(redis)
    assert _customer_statuses(engine) == {"thank_you": {"scheduled"}, "recontact": {"scheduled"}}
    return _summary(smtp)


def test_the_summary_says_the_rep_can_reply(held):
    assert "Or just reply to this email: yes" in held.get_body(("plain",)).get_content()
    assert "Or just reply to this email" in held.get_body(("html",)).get_content()


@pytest.mark.parametrize(("words", "done"), [("Yes, send them.", "Done: 2 emails to Jane will go out"),
                                             ("Confermo, sì manda", "Fatto: le 2 email a Jane partiranno")])
def test_a_yes_releases_the_held_emails_and_the_rep_is_told(held, words, done, imap, settings, engine, redis, smtp):
    ingest(imap, settings, engine, _reply(settings, held, words))
    assert _customer_statuses(engine) == {"thank_you": {"scheduled"}, "recontact": {"scheduled"}}
    with Session(engine) as session:
        assert session.exec(select(Outcome)).one().confirmed_at is not None
        inbound = session.exec(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        assert (inbound.status, inbound.reading["answers"]) == ("processed", [held["Message-ID"]])
        assert inbound.reading["answer"]["intent"] == "confirm"
    work(redis)
    (reply,) = [c.message for c in smtp.caught if c.message["Subject"].startswith("Re: Keepwarm:")]
    assert done in reply.get_body(("plain",)).get_content()
    assert reply["To"].endswith("tom.baker@acme.example>")
    assert len(rows(engine, kind="outcome")) == 0 and len(rows(engine, kind="rep_summary")) == 1  # no new note


def test_stop_cancels_the_pending_customer_emails(planned, imap, settings, engine, redis, smtp):
    ingest(imap, settings, engine, _reply(settings, planned, "Don't email them, they signed with a competitor."))
    customer = [r for r in rows(engine) if r.customer_id is not None]
    assert {(r.status, r.canceled_reason) for r in customer} == {("canceled", STOPPED)}
    work(redis)
    assert any("Done: I canceled 2 emails to Jane" in text for text in _answer_replies(smtp))


def test_recontact_in_june_moves_the_recontact(planned, imap, settings, engine, redis, smtp):
    ingest(imap, settings, engine, _reply(settings, planned, "Recontact in June instead"))
    (recontact,) = rows(engine, kind="recontact")
    local = recontact.due_at.astimezone(ZoneInfo("Europe/London"))  # the rep's zone: the customer's is unknown
    assert (local.month, local.hour, local.minute, recontact.status) == (6, 10, 0, "scheduled")
    assert local.weekday() < 5
    with Session(engine) as session:
        assert session.exec(select(Outcome)).one().recontact_on.month == 6
    work(redis)
    (text,) = _answer_replies(smtp)
    assert f"Done: the recontact to Jane moved to {local.day} June {local.year}" in text


def test_an_unreadable_answer_changes_nothing_and_says_how_to_answer(planned, imap, settings, engine, redis, smtp):
    before = [(r.id, r.status, r.due_at) for r in rows(engine)]
    ingest(imap, settings, engine, _reply(settings, planned, "Hmm, what is this about?"))
    assert [(r.id, r.status, r.due_at) for r in rows(engine) if r.kind != "rep_answer"] == before
    work(redis)
    (text,) = _answer_replies(smtp)
    assert "I could not read your answer; you can reply: yes / stop / recontact in <month>" in text
    assert "/debrief/" in text


@pytest.mark.parametrize("forged", ["another rep", "failed authentication"])
def test_a_forged_answer_changes_nothing(held, forged, imap, settings, engine, redis, smtp):
    raw = _reply(settings, held, "Yes, send them.", sender="Anna Bianchi <anna.bianchi@acme.example>") \
        if forged == "another rep" else SPOOFED + _reply(settings, held, "Yes, send them.")
    ingest(imap, settings, engine, raw)
    assert _customer_statuses(engine) == {"thank_you": {"held"}, "recontact": {"held"}}
    assert rows(engine, kind="rep_answer") == []
    with Session(engine) as session:
        inbound = session.exec(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        assert session.exec(select(Outcome)).one().confirmed_at is None
    expected = ("processed", None) if forged == "another rep" else ("ignored", "unauthenticated")
    assert (inbound.status, inbound.reason) == expected


def test_the_same_answer_twice_changes_things_once(planned, imap, settings, engine, redis, smtp):
    raw = _reply(settings, planned, "stop", message_id="<answer-1@mail.acme.example>")
    ingest(imap, settings, engine, raw)
    ingest(imap, settings, engine, raw)  # a duplicate delivery
    with Session(engine) as session:
        statuses = [(r.status, r.reason) for r in session.exec(select(InboundMessage).order_by(InboundMessage.id))]
    assert statuses[-2:] == [("processed", None), ("ignored", "duplicate")]
    assert len(rows(engine, kind="rep_answer")) == 1
    work(redis)
    assert len(_answer_replies(smtp)) == 1


def test_keepwarm_demo_reply_answers_the_demo_summary(imap, settings, engine, redis, smtp):
    from service.context import Services
    from service.pipeline.polling import poller
    from service.run.demo import append_demo_recap, append_demo_reply

    services = Services.with_engine(settings, engine)
    append_demo_recap(services, rep="demo.rep@example.com", customer="maria.rossi@customer.example")
    poller(settings, engine).poll_once()
    before = rows(engine, kind="recontact")[0].due_at
    append_demo_reply(services, rep="demo.rep@example.com", words="recontact in June")
    poller(settings, engine).poll_once()
    (recontact,) = rows(engine, kind="recontact")
    assert recontact.due_at != before and recontact.due_at.month in (5, 6)  # June, on the rep's clock
    assert len(rows(engine, kind="rep_answer")) == 1
