"""From accepted readings to Outcomes and their planned emails; a newer outcome replaces older plans.

A mailbox batch is recorded together: reps, customers, suppressions and the policy are loaded once, and rows are
written with bulk INSERTs, because building ORM objects one by one cost more than reading the mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, select

from service import events
from service.models import (
    Customer,
    OutboundEmail,
    Outcome,
    OutcomeCustomer,
    Rep,
    utcnow,
)
from service.outbox import status
from service.outbox.rows import outbound_values
from service.outbox.status import opt_out
from service.planning.plan import CustomerFacts, Hold, OutcomeFacts, PlannedEmail, hold_for, plan
from service.planning.policy import Policy, current_policy
from service.settings import Settings

if TYPE_CHECKING:  # importing the reading would compile the note reader's phrase tables in every sender
    from service.intake.reading import Reading

logger = logging.getLogger(__name__)


@dataclass
class _Known:
    """What every outcome of a batch needs, loaded once."""

    reps: dict[int, Rep]
    customers: dict[str, Customer]
    suppressed: set[str]
    policy: Policy
    # Customers with an outcome not yet superseded: only their new outcomes have older plans to replace.
    with_plans: set[int]


_OUTCOMES, _LINKS, _OUTBOUND = Outcome.__table__, OutcomeCustomer.__table__, OutboundEmail.__table__


def record_outcomes(session: Session, settings: Settings, items: list[tuple[int | None, Reading]],
                    *, now: datetime | None = None) -> list[tuple[int, datetime]]:
    """Store each outcome in order, replace older plans for its customers, plan its emails.

    Returns (id, due_at) of every new scheduled row, to enqueue once the caller has committed.
    """
    if not items:
        return []
    now = now or datetime.now(UTC)
    session.flush()
    batch = _load_batch(session, [reading for _, reading in items])
    scheduled: list[tuple[int, datetime]] = []
    for segment in _segments(items):
        scheduled += _record_segment(session, settings, batch, segment, now)
    return scheduled


def _segments(items: list[tuple[int | None, Reading]]):
    """Runs of consecutive outcomes that share no customer: each run is written with one INSERT per table.

    Order only matters between outcomes of the same customer (the newer replaces the older's plans), and
    such a pair never falls inside one run.
    """
    segment: list[tuple[int | None, Reading]] = []
    emails: set[str] = set()
    for item in items:
        mine = {c["email"] for c in item[1].customers}
        if mine & emails:
            yield segment
            segment, emails = [], set()
        segment.append(item)
        emails |= mine
    if segment:
        yield segment


def _load_batch(session: Session, readings: list[Reading]) -> _Known:
    emails = list({c["email"] for r in readings for c in r.customers})
    rep_ids = list({r.rep_id for r in readings})
    customers = {c.email: c for c in session.exec(select(Customer).where(Customer.email.in_(emails)))}
    with_plans = session.execute(sa.select(OutcomeCustomer.customer_id).join(
        Outcome, Outcome.id == OutcomeCustomer.outcome_id).where(
        Outcome.superseded_by.is_(None), OutcomeCustomer.customer_id.in_([c.id for c in customers.values()])))
    return _Known(
        reps={r.id: r for r in session.exec(select(Rep).where(Rep.id.in_(rep_ids)))},
        customers=customers,
        suppressed=status.suppressed_among(session, emails),
        policy=current_policy(session), with_plans=set(with_plans.scalars()))


def _record_segment(session: Session, settings: Settings, batch: _Known, items: list[tuple[int | None, Reading]],
                    now: datetime) -> list[tuple[int, datetime]]:
    # Core statements on the session's connection: same transaction, none of the ORM's per-object cost.
    connection = session.connection()
    reps = [batch.reps[reading.rep_id] for _, reading in items]
    holds = [hold_for(batch.policy, reading.unsure, reading.outcome, intake=_intake_hold(reading),
                      recontact_asked=reading.recontact_asked) for _, reading in items]
    values = [_outcome_values(inbound_id, reading, rep, hold)
              for (inbound_id, reading), rep, hold in zip(items, reps, holds, strict=True)]
    outcome_ids = connection.execute(_OUTCOMES.insert().returning(_OUTCOMES.c.id, sort_by_parameter_order=True),
                                     values).scalars().all()
    customers = [[batch.customers[c["email"]] for c in reading.customers if c["email"] in batch.customers]
                 for _, reading in items]
    links = [{"outcome_id": outcome_id, "customer_id": c.id}
             for outcome_id, mine in zip(outcome_ids, customers, strict=True) for c in mine]
    if links:
        connection.execute(_LINKS.insert(), links)
    events.emit_outcomes(session, "outcome.recorded", {i: str(i) for i in outcome_ids}, now=now)
    rows: list[dict] = []
    asked = [reading.recontact_asked for _, reading in items]
    for outcome_id, value, rep, mine, hold, rep_asked in zip(outcome_ids, values, reps, customers, holds, asked,
                                                              strict=True):
        customer_ids = {c.id for c in mine}
        if customer_ids & batch.with_plans:
            _supersede(session, outcome_id, value["outcome"], customer_ids)
        batch.with_plans |= customer_ids
        rows += _planned_values(settings, batch, outcome_id, value, rep, mine, hold, rep_asked, now)
    if not rows:
        return []
    ids = connection.execute(_OUTBOUND.insert().returning(_OUTBOUND.c.id, sort_by_parameter_order=True),
                             rows).scalars().all()
    scheduled = [(i, r["due_at"]) for i, r in zip(ids, rows, strict=True) if r["status"] == "scheduled"]
    events.emit_scheduled(session, scheduled, now=now)
    return scheduled


def _intake_hold(reading: Reading) -> str | None:
    """Intake's reason to hold the customer emails, in words for the rep."""
    if reading.hold == "too_many_customers":
        return f"{len(reading.customers)} customers in one email"
    if reading.hold == "typed_customers":
        return "the customer addresses come from your note's text"
    return None


def _outcome_values(inbound_id: int | None, reading: Reading, rep: Rep, hold: Hold | None) -> dict:
    threaded = reading.to_customer
    return {
        "held_reason": hold.reason if hold else None,
        "inbound_id": inbound_id, "rep_id": rep.id, "outcome": reading.outcome, "cause": reading.cause,
        "reasons": list(reading.reasons),
        "recontact_on": date.fromisoformat(reading.recontact_on) if reading.recontact_on else None,
        "decision_makers": list(reading.decision_makers), "evidence": list(reading.evidence),
        "note": reading.note[:20000], "language": reading.language,
        "noemail": bool(reading.commands and reading.commands.get("noemail")),
        "meeting_at": datetime.fromisoformat(reading.sent_at) if reading.sent_at else datetime.now(UTC),
        "meeting_subject": reading.subject[:500],
        "thread_message_id": reading.message_id if threaded else None,
        "thread_references": list(reading.references)[-10:] if threaded else [],
        "created_at": utcnow()}


def _supersede(session: Session, outcome_id: int, outcome: str, customer_ids: set[int]) -> None:
    """Pending emails of older outcomes for these customers are canceled; fully covered outcomes are superseded."""
    if not customer_ids:
        return
    links = session.execute(sa.select(OutcomeCustomer.outcome_id, OutcomeCustomer.customer_id)
                            .join(Outcome, Outcome.id == OutcomeCustomer.outcome_id)
                            .where(Outcome.superseded_by.is_(None), Outcome.id < outcome_id,
                                   Outcome.id.in_(sa.select(OutcomeCustomer.outcome_id).where(
                                       OutcomeCustomer.customer_id.in_(customer_ids))))).all()
    covered: dict[int, set[int]] = {}
    for old_id, customer_id in links:
        covered.setdefault(old_id, set()).add(customer_id)
    reason = f"superseded by outcome {outcome_id} ({outcome})"
    for old_id, old_customers in covered.items():
        _cancel_pending(session, old_id, customer_ids, whole=old_customers <= customer_ids, reason=reason)
        if old_customers <= customer_ids:
            session.execute(sa.update(Outcome).where(Outcome.id == old_id).values(superseded_by=outcome_id))
            events.emit_outcomes(session, "outcome.changed", {old_id: f"{old_id}:superseded_by:{outcome_id}"})


def _cancel_pending(session: Session, old_id: int, customer_ids: set[int], *, whole: bool, reason: str) -> None:
    """The old outcome's pending emails to these customers (and its rep reminder, once it is wholly replaced)."""
    for_customers = OutboundEmail.customer_id.in_(customer_ids)
    which = sa.or_(for_customers, OutboundEmail.kind == "debrief_reminder") if whole else for_customers
    status.cancel(session, OutboundEmail.outcome_id == old_id, which, reason=reason)


def _planned_values(settings: Settings, batch: _Known, outcome_id: int, outcome: dict, rep: Rep,
                    customers: list[Customer], hold: Hold | None, asked: bool, now: datetime) -> list[dict]:
    facts = _facts(batch, outcome, rep, customers, hold, asked)
    by_email = {c.email: c for c in customers}
    return [_row_values(settings, planned, outcome_id, outcome["language"], rep, by_email)
            for planned in plan(facts, batch.policy, now)]


def _facts(batch: _Known, outcome: dict, rep: Rep, customers: list[Customer], hold: Hold | None,
           asked: bool) -> OutcomeFacts:
    return OutcomeFacts(
        outcome=outcome["outcome"], cause=outcome["cause"], reasons=tuple(outcome["reasons"]),
        recontact_on=outcome["recontact_on"], meeting_at=outcome["meeting_at"], rep_timezone=rep.timezone,
        customers=tuple(CustomerFacts(email=c.email, name=c.name, timezone=c.timezone,
                                      blocked=opt_out(c, batch.suppressed)) for c in customers),
        noemail=outcome["noemail"], held=hold.kinds if hold else (), recontact_asked=asked)


def _row_values(settings: Settings, planned: PlannedEmail, outcome_id: int, language: str, rep: Rep,
                by_email: dict[str, Customer]) -> dict:
    customer = by_email.get(planned.to) if planned.to else None
    language = language if customer else (rep.language or language)  # the rep's mail: the rep's language first
    return outbound_values(settings, kind=planned.kind, rep_id=rep.id, variant=planned.variant,
                           to_address=customer.email if customer else rep.email,
                           to_name=customer.name if customer else rep.name, due_at=planned.due_at,
                           outcome_id=outcome_id, language=language, customer_id=customer.id if customer else None,
                           canceled_reason=planned.canceled_reason, held=planned.held)
