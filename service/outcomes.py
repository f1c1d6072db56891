"""From an accepted reading to an Outcome and its planned emails; a newer outcome replaces older plans."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime

from sqlmodel import Session, select

from service.intake.reading import Reading
from service.models import Customer, OutboundEmail, Outcome, OutcomeCustomer, PolicyRecord, Rep, Suppression
from service.planning import CustomerFacts, OutcomeFacts, PlannedEmail, Policy, plan
from service.settings import Settings

logger = logging.getLogger(__name__)

CUSTOMER_KINDS = ("thank_you", "recontact")


def current_policy(session: Session) -> Policy:
    """The newest policy an admin saved, else the defaults."""
    record = session.exec(select(PolicyRecord).order_by(PolicyRecord.id.desc())).first()
    return Policy.from_dict(record.values) if record else Policy()


def mint_message_id(settings: Settings) -> str:
    """A Message-ID made once per row, in our own domain (which is how replies to us are recognised)."""
    return f"<kw.{uuid.uuid4().hex}@{settings.message_id_domain}>"


def new_outbound(settings: Settings, *, kind: str, rep: Rep, to_address: str, to_name: str | None,
                 due_at: datetime, outcome_id: int | None, language: str, customer_id: int | None = None,
                 variant: str = "default", canceled_reason: str | None = None) -> OutboundEmail:
    return OutboundEmail(kind=kind, variant=variant, language=language, rep_id=rep.id, customer_id=customer_id,
                         to_address=to_address, to_name=to_name, due_at=due_at, outcome_id=outcome_id,
                         message_id=mint_message_id(settings),
                         status="canceled" if canceled_reason else "scheduled", canceled_reason=canceled_reason)


def record_outcome(session: Session, settings: Settings, inbound_id: int | None, reading: Reading,
                   *, now: datetime | None = None) -> list[OutboundEmail]:
    """Store the outcome, replace older plans for the same customers, and plan the new emails."""
    now = now or datetime.now(UTC)
    rep = session.get(Rep, reading.rep_id)
    customers = _customers(session, reading)
    outcome = _outcome_row(inbound_id, reading, rep)
    session.add(outcome)
    session.flush()
    for customer in customers:
        session.add(OutcomeCustomer(outcome_id=outcome.id, customer_id=customer.id))
    _supersede(session, outcome, customers)
    rows = _planned_rows(session, settings, outcome, rep, customers, reading, now)
    session.add_all(rows)
    session.flush()
    return rows


def _customers(session: Session, reading: Reading) -> list[Customer]:
    emails = [c["email"] for c in reading.customers]
    found = {c.email: c for c in session.exec(select(Customer).where(Customer.email.in_(emails)))}
    return [found[e] for e in emails if e in found]


def _outcome_row(inbound_id: int | None, reading: Reading, rep: Rep) -> Outcome:
    threaded = reading.to_customer
    return Outcome(
        inbound_id=inbound_id, rep_id=rep.id, outcome=reading.outcome, cause=reading.cause,
        reasons=list(reading.reasons),
        recontact_on=date.fromisoformat(reading.recontact_on) if reading.recontact_on else None,
        decision_makers=list(reading.decision_makers), evidence=list(reading.evidence), note=reading.note[:20000],
        language=reading.language, noemail=bool(reading.commands and reading.commands.get("noemail")),
        meeting_at=datetime.fromisoformat(reading.sent_at) if reading.sent_at else datetime.now(UTC),
        meeting_subject=reading.subject[:500],
        thread_message_id=reading.message_id if threaded else None,
        thread_references=(list(reading.references)[-10:] if threaded else []))


def _supersede(session: Session, outcome: Outcome, customers: list[Customer]) -> None:
    """Pending emails of older outcomes for these customers are canceled; fully covered outcomes are superseded."""
    ids = {c.id for c in customers}
    older = session.exec(select(Outcome).join(OutcomeCustomer, OutcomeCustomer.outcome_id == Outcome.id).where(
        OutcomeCustomer.customer_id.in_(ids), Outcome.id != outcome.id, Outcome.superseded_by.is_(None))).all()
    for old in {o.id: o for o in older}.values():
        _cancel_pending(session, old, ids, f"superseded by outcome {outcome.id} ({outcome.outcome})")
        covered = set(session.exec(select(OutcomeCustomer.customer_id).where(OutcomeCustomer.outcome_id == old.id)))
        if covered <= ids:
            old.superseded_by = outcome.id


def _cancel_pending(session: Session, old: Outcome, customer_ids: set[int], reason: str) -> None:
    rows = session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == old.id,
                                                    OutboundEmail.status == "scheduled"))
    for row in rows:
        if row.customer_id in customer_ids or (row.customer_id is None and row.kind == "debrief_reminder"):
            row.status, row.canceled_reason, row.updated_at = "canceled", reason, datetime.now(UTC)
            logger.info("outbound %s canceled: %s", row.id, reason)


def _planned_rows(session: Session, settings: Settings, outcome: Outcome, rep: Rep, customers: list[Customer],
                  reading: Reading, now: datetime) -> list[OutboundEmail]:
    facts = _facts(session, outcome, rep, customers)
    by_email = {c.email: c for c in customers}
    return [_row_for(settings, planned, outcome, rep, by_email) for planned in plan(facts, current_policy(session), now)]


def _facts(session: Session, outcome: Outcome, rep: Rep, customers: list[Customer]) -> OutcomeFacts:
    suppressed = set(session.exec(select(Suppression.email).where(
        Suppression.email.in_([c.email for c in customers]))))
    return OutcomeFacts(
        outcome=outcome.outcome, cause=outcome.cause, reasons=tuple(outcome.reasons),
        recontact_on=outcome.recontact_on, meeting_at=outcome.meeting_at, rep_timezone=rep.timezone,
        customers=tuple(CustomerFacts(email=c.email, name=c.name, timezone=c.timezone,
                                      blocked="suppressed" if c.email in suppressed else
                                      ("undeliverable" if c.undeliverable else None)) for c in customers),
        noemail=outcome.noemail)


def _row_for(settings: Settings, planned: PlannedEmail, outcome: Outcome, rep: Rep,
             by_email: dict[str, Customer]) -> OutboundEmail:
    customer = by_email.get(planned.to) if planned.to else None
    return new_outbound(settings, kind=planned.kind, rep=rep, variant=planned.variant,
                        to_address=customer.email if customer else rep.email,
                        to_name=(customer.name if customer else rep.name), due_at=planned.due_at,
                        outcome_id=outcome.id, language=outcome.language,
                        customer_id=customer.id if customer else None, canceled_reason=planned.canceled_reason)
