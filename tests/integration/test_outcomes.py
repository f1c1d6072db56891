"""Outcomes and plans in the database: a newer meeting email for the same customer replaces the older plan."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from service.models import OutboundEmail, Outcome
from service.pipeline.polling import poller
from tests.mail import recap

LOST = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n"
WON = "Hi Jane,\n\ngreat news: you signed the order today, welcome aboard! I'll send the contract.\n\nTom\n"
LOST_AGAIN = "Hi Jane,\n\nthanks again. I understand it is on hold until September; I'll be in touch then.\n\nTom\n"


def _ingest(imap, settings, engine, *messages: bytes) -> None:
    for message in messages:
        imap.append("INBOX", message)
    poller(settings, engine).poll_once()


def _plan(engine) -> list[tuple[int, str, str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(select(OutboundEmail).where(OutboundEmail.customer_id.is_not(None))
                            .order_by(OutboundEmail.id))
        return [(r.outcome_id, r.kind, r.status, r.canceled_reason) for r in rows]


def _outcomes(engine) -> list[Outcome]:
    with Session(engine) as session:
        return list(session.exec(select(Outcome).order_by(Outcome.id)))


def test_a_won_outcome_cancels_the_pending_recontact(imap, settings, engine, reps):
    _ingest(imap, settings, engine, recap(1, body=LOST, date=datetime(2026, 11, 20, 15, tzinfo=UTC)))
    _ingest(imap, settings, engine, recap(2, body=WON, date=datetime(2026, 11, 24, 15, tzinfo=UTC)))
    first, second = _outcomes(engine)
    assert (first.outcome, second.outcome) == ("lost", "won")
    assert first.superseded_by == second.id
    plan = _plan(engine)
    assert (first.id, "recontact", "canceled", f"superseded by outcome {second.id} (won)") in plan
    assert not [p for p in plan if p[0] == second.id and p[1] == "recontact"]
    assert (second.id, "thank_you", "scheduled", None) in plan


def test_a_new_lost_outcome_reschedules(imap, settings, engine, reps):
    _ingest(imap, settings, engine, recap(1, body=LOST, date=datetime(2026, 11, 20, 15, tzinfo=UTC)))
    _ingest(imap, settings, engine, recap(2, body=LOST_AGAIN, date=datetime(2026, 11, 24, 15, tzinfo=UTC)))
    first, second = _outcomes(engine)
    pending = [p for p in _plan(engine) if p[2] == "scheduled"]
    assert {p[0] for p in pending} == {second.id}
    assert sorted(p[1] for p in pending) == ["recontact", "thank_you"]
    with Session(engine) as session:
        recontact = session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == second.id,
                                                             OutboundEmail.kind == "recontact")).one()
    assert recontact.due_at.date().month == 9  # "until September" wins over the older "next April"


def test_two_meetings_in_one_batch_are_planned_in_order(imap, settings, engine, reps):
    _ingest(imap, settings, engine, recap(1, body=LOST, date=datetime(2026, 11, 20, 15, tzinfo=UTC)),
            recap(2, body=WON, date=datetime(2026, 11, 24, 15, tzinfo=UTC)))
    first, second = _outcomes(engine)
    assert first.superseded_by == second.id
    assert [p for p in _plan(engine) if p[2] == "scheduled" and p[1] == "recontact"] == []


def test_other_customers_keep_their_plans(imap, settings, engine, reps):
    _ingest(imap, settings, engine,
            recap(1, body=LOST, to="Jane <jane@globex.example>, Bob <bob@globex.example>"),
            recap(2, body=WON, to="Jane <jane@globex.example>", date=datetime(2026, 11, 24, 15, tzinfo=UTC)))
    first, second = _outcomes(engine)
    assert first.superseded_by is None  # Bob is still only in the first outcome
    with Session(engine) as session:
        bob = session.exec(select(OutboundEmail).where(OutboundEmail.to_address == "bob@globex.example",
                                                       OutboundEmail.kind == "recontact")).one()
    assert bob.status == "scheduled"


def test_a_batch_mixing_customers_keeps_each_customers_order(imap, settings, engine, reps):
    """Outcomes are written in runs that share no customer: Jane's second meeting still replaces her first,
    and Bob's and Ann's, recorded around it, keep their plans."""
    _ingest(imap, settings, engine,
            recap(1, body=LOST, to="Jane <jane@globex.example>", date=datetime(2026, 11, 20, 15, tzinfo=UTC)),
            recap(2, body=LOST, to="Bob <bob@initech.example>", date=datetime(2026, 11, 20, 16, tzinfo=UTC)),
            recap(3, body=WON, to="Jane <jane@globex.example>", date=datetime(2026, 11, 24, 15, tzinfo=UTC)),
            recap(4, body=LOST, to="Ann <ann@umbrella.example>", date=datetime(2026, 11, 24, 16, tzinfo=UTC)))
    jane_lost, bob, jane_won, ann = _outcomes(engine)
    assert [o.outcome for o in (jane_lost, bob, jane_won, ann)] == ["lost", "lost", "won", "lost"]
    assert jane_lost.inbound_id < bob.inbound_id < jane_won.inbound_id < ann.inbound_id
    assert (jane_lost.superseded_by, bob.superseded_by, jane_won.superseded_by, ann.superseded_by) == (
        jane_won.id, None, None, None)
    scheduled = {(p[0], p[1]) for p in _plan(engine) if p[2] == "scheduled"}
    assert scheduled == {(bob.id, "thank_you"), (bob.id, "recontact"), (jane_won.id, "thank_you"),
                         (ann.id, "thank_you"), (ann.id, "recontact")}


def test_the_reps_own_recontact_date_is_planned_even_when_the_loss_was_ours(imap, settings, engine, reps):
    """A plus-address date on an internal loss: the recontact on that date (the next business day at most), and
    the debrief asked too; before, no recontact was planned without an external cause."""
    body = "Hi Jane,\n\nthanks for your time today. I'm sorry the demo did not convince you; that was on me.\n\nTom\n"
    message = b"Delivered-To: followup+lost+2027-03-06@acme.example\r\n" + recap(1, body=body)
    _ingest(imap, settings, engine, message)
    with Session(engine) as session:
        outcome = session.exec(select(Outcome)).one()
        rows = {r.kind: r for r in session.exec(select(OutboundEmail))}
    assert (outcome.outcome, outcome.cause) == ("lost", "internal")
    assert set(rows) == {"rep_summary", "thank_you", "recontact", "debrief_reminder"}
    assert rows["recontact"].due_at.date() == datetime(2027, 3, 8).date()  # 6 March 2027 is a Saturday
