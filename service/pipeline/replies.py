"""A rep's answer by email applied: confirm, stop or move the recontact of the outcome the answered email was
about, and tell the rep what changed in a short reply (the `rep_answer` email) threaded to theirs.

The answered email must be one of ours to this rep (a summary, a debrief reminder, a delivery notice, an earlier
reply): an answer naming another rep's email changes nothing. Every change goes through outbox.status, so an
answer read twice changes nothing the second time (and intake reads the same Message-ID only once).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox import status
from service.outbox.compose import reply_subject
from service.outbox.rows import new_outbound
from service.outbox.status import Due
from service.outbox.template_context import date_text
from service.planning import calendar
from service.planning.policy import Policy, current_policy
from service.settings import Settings

logger = logging.getLogger(__name__)

STOPPED = "stopped by the rep's reply"


def apply_answer(session: Session, settings: Settings, inbound_id: int | None, reading, *,
                 now: datetime | None = None) -> list[Due]:
    """The answer's changes and the reply to the rep, in the caller's transaction; the rows to enqueue."""
    now = now or datetime.now(UTC)
    answered = _answered(session, reading)
    if answered is None:
        return []
    outcome = session.get(Outcome, answered.outcome_id)
    rep = session.get(Rep, answered.rep_id)
    intent = (reading.answer or {}).get("intent", "unreadable")
    due, notice = _apply(session, settings, intent, reading.answer or {}, outcome, now)
    logger.info("inbound %s: rep %s answered %s (%s): %s", inbound_id, rep.id, answered.message_id, intent,
                notice["action"])
    if notice["action"] == "nothing":
        return due
    return due + [_reply(session, settings, rep, outcome, answered, reading, notice, now)]


def _answered(session: Session, reading) -> OutboundEmail | None:
    """The first of our emails the answer names that went to a rep; None (and a log line) when it is not this
    rep's, or is about no outcome."""
    rows = {r.message_id: r for r in session.exec(select(OutboundEmail).where(
        OutboundEmail.message_id.in_(reading.answers), OutboundEmail.customer_id.is_(None)))}
    row = next((rows[i] for i in reading.answers if i in rows), None)
    if row is None:
        logger.warning("answer %s names none of our emails to a rep: nothing changed", reading.message_id)
        return None
    if row.rep_id != reading.rep_id:
        logger.warning("answer %s from rep %s names outbound %s of rep %s: nothing changed", reading.message_id,
                       reading.rep_id, row.id, row.rep_id)
        return None
    if row.outcome_id is None:
        logger.info("answer %s names outbound %s, about no outcome: nothing changed", reading.message_id, row.id)
        return None
    return row


def _apply(session: Session, settings: Settings, intent: str, answer: dict, outcome: Outcome,
           now: datetime) -> tuple[list[Due], dict]:
    """What the intent changes: the rows to enqueue, and the notice the reply is written from."""
    base = {"customer": _customer_label(session, outcome), "count": 0, "date_text": "", "subject": ""}
    if intent == "confirm":
        released = status.release_held(session, outcome.id, now=now)
        return released, {**base, "action": "confirmed" if released else "nothing", "count": len(released)}
    if intent == "stop":
        canceled = status.cancel(session, OutboundEmail.outcome_id == outcome.id,
                                 OutboundEmail.customer_id.is_not(None), reason=STOPPED, now=now)
        return [], {**base, "action": "stopped" if canceled else "nothing", "count": len(canceled)}
    if intent == "move" and answer.get("recontact_on"):
        day = date.fromisoformat(answer["recontact_on"])
        due, count = _move_recontacts(session, settings, outcome, day, now)
        words = date_text(day, answer.get("language") or outcome.language)
        return due, {**base, "action": "moved" if count else "nothing", "count": count, "date_text": words}
    return [], {**base, "action": "unreadable"}


def _move_recontacts(session: Session, settings: Settings, outcome: Outcome, day: date,
                     now: datetime) -> tuple[list[Due], int]:
    """The outcome's pending recontacts moved to the day's recontact slot; for a lost outcome with none pending,
    a new one per customer who may be written to. Returns what to enqueue and how many rows changed."""
    policy = current_policy(session)
    rep = session.get(Rep, outcome.rep_id)
    pending = list(session.exec(select(OutboundEmail).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "recontact",
        OutboundEmail.status.in_(PENDING_STATUSES)).order_by(OutboundEmail.id)))
    if pending:
        moved = [row for row in pending
                 if status.move(session, row, now=now, due_at=_slot(session, row.customer_id, rep, day, policy, now))]
    elif outcome.outcome == "lost":
        moved = _new_recontacts(session, settings, outcome, rep, day, policy, now)
    else:
        return [], 0
    if moved:
        session.execute(sa.update(Outcome).where(Outcome.id == outcome.id).values(recontact_on=day))
    return [(row.id, row.due_at) for row in moved if row.status == "scheduled"], len(moved)


def _new_recontacts(session: Session, settings: Settings, outcome: Outcome, rep: Rep, day: date, policy: Policy,
                    now: datetime) -> list[OutboundEmail]:
    created = []
    for customer in _customers(session, outcome):
        if status.opt_out(customer, status.suppressed_among(session, [customer.email])):
            continue
        row = new_outbound(settings, kind="recontact", rep=rep, to_address=customer.email, to_name=customer.name,
                           due_at=_slot(session, customer.id, rep, day, policy, now), outcome_id=outcome.id,
                           language=outcome.language, customer_id=customer.id)
        session.add(row)
        created.append(row)
    session.flush()
    return created


def _slot(session: Session, customer_id: int | None, rep: Rep, day: date, policy: Policy, now: datetime) -> datetime:
    """The policy's recontact time on the first business day from `day`, on the customer's clock (never past)."""
    customer = session.get(Customer, customer_id) if customer_id else None
    zone = calendar.customer_zone(customer.timezone if customer else None, ZoneInfo(rep.timezone))
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return calendar.next_business_slot(max(start, now), zone, policy.recontact_time, policy)


def _customers(session: Session, outcome: Outcome) -> list[Customer]:
    return list(session.exec(select(Customer).join(OutcomeCustomer, OutcomeCustomer.customer_id == Customer.id)
                             .where(OutcomeCustomer.outcome_id == outcome.id).order_by(Customer.id)))


def _customer_label(session: Session, outcome: Outcome) -> str:
    customers = _customers(session, outcome)
    if not customers:
        return ""
    first = customers[0].name or customers[0].email
    return first if len(customers) == 1 else f"{first} (+{len(customers) - 1})"


def _reply(session: Session, settings: Settings, rep: Rep, outcome: Outcome, answered: OutboundEmail, reading,
           notice: dict, now: datetime) -> Due:
    """The short reply to the rep, in the answer's language, threaded to the rep's email."""
    language = (reading.answer or {}).get("language") or outcome.language
    row = new_outbound(settings, kind="rep_answer", rep=rep, to_address=rep.email, to_name=rep.name, due_at=now,
                       outcome_id=outcome.id, language=language)
    row.notice = {**notice, "subject": reply_subject(reading.subject or "Keepwarm"),
                  "in_reply_to": reading.message_id,
                  "references": [*reading.references[-9:], reading.message_id]}
    session.add(row)
    session.flush()
    return row.id, row.due_at
