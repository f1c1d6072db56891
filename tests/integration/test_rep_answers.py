"""Reps answer Keepwarm by replying to its summary: confirm, stop, move the recontact, correct the outcome or the
cause, add decision makers or a lesson, in plain words, in English and Italian.

Real Dovecot, poller, Redis, RQ worker and SMTP catcher: the summary goes out, the rep's reply arrives in the
mailbox, the poller reads it as an answer about that outcome, the pipeline applies it and a short reply goes back.
Each kind of answer runs through the same path (`test_each_kind_of_answer`), one row of a table per language.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from service.models import Debrief, InboundMessage, OutboundEmail, Outcome, Rep
from service.pipeline.replies import STOPPED
from tests.integration.test_held import always_hold  # noqa: F401  (a fixture)
from tests.integration.test_intake_trust import SPOOFED
from tests.integration.test_outbox import ingest, rows, work
from tests.mail import recap

LOST = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n"
LOST_IT = ("Ciao Jane,\n\ngrazie per l'incontro di oggi. Ho capito che il budget non c'è fino ad aprile; ci risentiamo "
           "allora.\n\nTom\n")
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


def test_the_italian_summary_says_it_too(imap, settings, engine, reps, redis, smtp):
    ingest(imap, settings, engine, recap(1, body=LOST_IT, date=datetime.now(UTC)))
    work(redis)
    summary = _summary(smtp)
    assert "Oppure rispondi a questa email: sì" in summary.get_body(("plain",)).get_content()
    assert "Oppure rispondi a questa email" in summary.get_body(("html",)).get_content()


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


# ------------------------------------------------------------------------------------------- each kind of answer


def _outcome(engine) -> Outcome:
    with Session(engine) as session:
        return session.exec(select(Outcome)).one()


def _debrief(engine) -> Debrief | None:
    with Session(engine) as session:
        return session.exec(select(Debrief)).first()


def _released(engine, before):
    assert _customer_statuses(engine) == {"thank_you": {"scheduled"}, "recontact": {"scheduled"}}
    assert _outcome(engine).confirmed_at is not None


def _stopped(engine, before):
    assert {(r.status, r.canceled_reason) for r in rows(engine) if r.customer_id} == {("canceled", STOPPED)}


def _moved(month):
    def check(engine, before):
        (recontact,) = rows(engine, kind="recontact")
        local = recontact.due_at.astimezone(ZoneInfo("Europe/London"))
        assert (local.month, recontact.status) == (month, "scheduled") and local.weekday() < 5
        assert _outcome(engine).recontact_on.month == month
    return check


def _won(engine, before):
    """As a debrief saying "won": the recontact canceled, the thank-you's wording the won one."""
    assert _outcome(engine).outcome == "won"
    assert _debrief(engine).answers["outcome"] == "won"
    (recontact,) = rows(engine, kind="recontact")
    (thank_you,) = rows(engine, kind="thank_you")
    assert (recontact.status, thank_you.status, thank_you.variant) == ("canceled", "scheduled", "won")


def _ours(engine, before):
    """As a debrief saying the cause was ours: the outcome still lost, the recontact kept (moved in place)."""
    answers = _debrief(engine).answers
    assert (answers["outcome"], answers["ours"], answers["theirs"]) == ("lost", ["other"], [])
    assert _outcome(engine).outcome == "lost"
    assert {r.status for r in rows(engine, kind="recontact")} == {"scheduled"}
    assert [r.due_at for r in rows(engine, kind="recontact")] == [r.due_at for r in before if r.kind == "recontact"]


def _cfo(engine, before):
    people = [{"name": "Maria Rossi", "role": "cfo"}]
    assert _outcome(engine).decision_makers == people and _debrief(engine).answers["decision_makers"] == people
    assert [(r.id, r.status, r.due_at) for r in rows(engine) if r.customer_id] == \
        [(r.id, r.status, r.due_at) for r in before if r.customer_id]  # people change no date


def _lesson(words):
    def check(engine, before):
        assert _debrief(engine).lesson == words
        assert [(r.id, r.status, r.due_at) for r in rows(engine) if r.customer_id] == \
            [(r.id, r.status, r.due_at) for r in before if r.customer_id]
    return check


def _unchanged(engine, before):
    assert [(r.id, r.status, r.due_at) for r in rows(engine) if r.kind != "rep_answer"] == \
        [(r.id, r.status, r.due_at) for r in before]
    assert _debrief(engine) is None


# language, held?, the rep's words, what changed, the reply's words
KINDS = [
    ("en", True, "ok send", _released, "Done: 2 emails to Jane will go out as planned."),
    ("it", True, "va bene", _released, "Fatto: le 2 email a Jane partiranno come previsto."),
    ("it", True, "ok", _released, "Fatto: le 2 email a Jane partiranno"),  # too short: the summary's language
    ("it", False, "Non scrivergli più, grazie", _stopped, "Fatto: ho annullato 2 email a Jane."),
    ("it", False, "ricontattare a settembre", _moved(9), "Fatto: il ricontatto di Jane è spostato al "),
    ("en", False, "Actually we won!", _won, "Done: the outcome is now: won; 1 pending email to Jane canceled."),
    ("it", False, "In realtà abbiamo vinto", _won, "Fatto: la vendita ora risulta vinta; annullata un'email in attesa"),
    ("en", False, "It was my fault", _ours, "Done: the cause is now on our side."),
    ("it", False, "È stata colpa mia", _ours, "Fatto: la causa ora è dal nostro lato."),
    ("en", False, "Also the CFO Maria Rossi must sign off", _cfo,
     "Done: added to the decision makers: Maria Rossi (CFO)."),
    ("it", False, "Anche il direttore finanziario Maria Rossi deve firmare", _cfo,
     "Fatto: aggiunti ai decisori: Maria Rossi (CFO)."),
    ("en", False, "Lesson: bring the case study next time", _lesson("bring the case study next time"),
     "Done: your lesson is saved in the debrief."),
    ("it", False, "Lezione: portare il caso di studio", _lesson("portare il caso di studio"),
     "Fatto: la tua lezione è salvata nel debrief."),
    ("it", False, "Boh, cos'è questa email?", _unchanged,
     "Non sono riuscito a leggere la tua risposta; puoi rispondere: sì / stop / ricontattare a <mese>"),
]


@pytest.mark.parametrize(("language", "hold", "words", "changed", "said"), KINDS,
                         ids=[f"{k[0]}-{k[2][:24]}" for k in KINDS])
def test_each_kind_of_answer(language, hold, words, changed, said, imap, settings, engine, reps, redis, smtp):
    if hold:
        _hold_policy(engine)
    ingest(imap, settings, engine, recap(1, body=LOST_IT if language == "it" else LOST, date=datetime.now(UTC)))
    work(redis)
    summary = _summary(smtp)
    assert _outcome(engine).language == language
    before = rows(engine)
    ingest(imap, settings, engine, _reply(settings, summary, words))
    changed(engine, before)
    work(redis)
    (reply,) = [c.message for c in smtp.caught if c.message["Subject"].startswith("Re: Keepwarm:")]
    text = reply.get_body(("plain",)).get_content()
    assert said in " ".join(text.split()), text
    assert reply["In-Reply-To"] and summary["Message-ID"] in reply["References"]  # threaded to the summary
    assert len(rows(engine, kind="rep_summary")) == 1  # read as an answer, not as a new meeting


def _hold_policy(engine):
    from service.models import PolicyRecord
    from service.planning.policy import Policy

    with Session(engine) as session:
        session.add(PolicyRecord(values=Policy(confirmation="always").to_dict(), author="test"))
        session.commit()


@pytest.mark.parametrize("words", ["Actually we won", "Recontact in June instead"])
def test_an_answer_read_again_changes_things_once(words, planned, imap, settings, engine, redis, smtp):
    """An admin's "read again" of an answer already applied: the intake does not call it a duplicate (same row),
    the answer's reply does."""
    from service.context import Services
    from service.pipeline.process import process_message

    ingest(imap, settings, engine, _reply(settings, planned, words))
    after = [(r.id, r.status, r.variant, r.due_at) for r in rows(engine)]
    with Session(engine) as session:
        inbound = session.exec(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        debrief = session.exec(select(Debrief)).first()
        inbound.status, inbound.reason = "new", None  # as the admin's "read again" does
        session.add(inbound)
        session.commit()
        inbound_id, updated_at = inbound.id, debrief.updated_at if debrief else None
    assert process_message(Services.with_engine(settings, engine), inbound_id) == "processed"
    assert [(r.id, r.status, r.variant, r.due_at) for r in rows(engine)] == after
    assert (_debrief(engine).updated_at if updated_at else None) == updated_at
    work(redis)
    assert len(_answer_replies(smtp)) == 1


def test_a_short_answer_is_answered_in_the_reps_language(planned, imap, settings, engine, redis, smtp):
    """"+3m" says nothing of its language: the rep's own (Rep.language) is used, else the summary's."""
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        rep.language = "it"
        session.add(rep)
        session.commit()
    ingest(imap, settings, engine, _reply(settings, planned, "+3m"))
    work(redis)
    (text,) = _answer_replies(smtp)
    assert "Fatto: il ricontatto di Jane è spostato al " in text
    (answer,) = rows(engine, kind="rep_answer")
    assert answer.language == "it"
    with Session(engine) as session:
        assert session.get(OutboundEmail, answer.id).notice["action"] == "moved"



# ---------------------------------------------------------------------------------------------------- security review


@pytest.mark.parametrize("words", ["stop", "Yes, send them.", "recontact in June"])
def test_an_answer_about_another_rep_s_meeting_changes_nothing_even_through_an_email_to_the_answering_rep(
        words, engine, settings, reps):
    """The answered email went to Tom, but its outcome is Anna's (a row made by hand, a future reassignment…): the
    check must be on the outcome's rep too, not only the email's, or Tom's answer acts on Anna's customers."""
    from types import SimpleNamespace

    from service.models import Customer, OutcomeCustomer
    from service.notes.answers import read_answer
    from service.outbox.rows import new_outbound
    from service.pipeline.replies import apply_answer

    now = datetime.now(UTC)
    with Session(engine) as session:
        anna, tom = (session.exec(select(Rep).where(Rep.email == e)).one()
                     for e in ("anna.bianchi@acme.example", "tom.baker@acme.example"))
        person = Customer(email="jane@globex.example", name="Jane Doe")
        outcome = Outcome(rep_id=anna.id, outcome="lost", cause="external", reasons=["budget"],
                          meeting_at=now - timedelta(hours=2), language="en")
        session.add_all([person, outcome])
        session.flush()
        session.add(OutcomeCustomer(outcome_id=outcome.id, customer_id=person.id))
        held = [new_outbound(settings, kind=kind, rep=anna, to_address=person.email, to_name=None,
                             due_at=now + timedelta(days=days), outcome_id=outcome.id, language="en",
                             customer_id=person.id) for kind, days in (("thank_you", 1), ("recontact", 90))]
        for row in held:
            row.status = "held"
        to_tom = new_outbound(settings, kind="rep_summary", rep=tom, to_address=tom.email, to_name=None, due_at=now,
                              outcome_id=outcome.id, language="en")
        session.add_all([*held, to_tom])
        session.commit()
        reading = SimpleNamespace(message_id="<tom-answer@mail.acme.example>", answers=[to_tom.message_id],
                                  rep_id=tom.id, subject="Re: Keepwarm", references=[to_tom.message_id],
                                  answer=read_answer(words, now.date()).to_json())
        due = apply_answer(session, settings, None, reading, now=now)
        session.commit()
        assert due == []
        assert {r.status for r in session.exec(select(OutboundEmail).where(OutboundEmail.customer_id.is_not(None)))} \
            == {"held"}
        assert session.exec(select(OutboundEmail).where(OutboundEmail.kind == "rep_answer")).all() == []
        assert session.get(Outcome, outcome.id).recontact_on is None
