"""Acting on the outbox by hand: list, send now, cancel, retry relay failures, clear an undeliverable mark
(CLI and admin pages share these)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.context import Services
from service.db import session_scope
from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome

logger = logging.getLogger(__name__)


def as_dict(row: OutboundEmail) -> dict:
    return {"id": row.id, "kind": row.kind, "variant": row.variant, "to": row.to_address,
            "due_at": row.due_at.isoformat(), "status": row.status, "message_id": row.message_id,
            "outcome_id": row.outcome_id, "language": row.language, "attempts": row.attempts,
            "reason": row.canceled_reason or row.last_error, "failure": row.failure,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None}


def list_outbound(engine: Engine, *, status: str | None = None, kind: str | None = None,
                  limit: int = 500) -> list[dict]:
    query = select(OutboundEmail)
    if status:
        query = query.where(OutboundEmail.status == status)
    if kind:
        query = query.where(OutboundEmail.kind == kind)
    with session_scope(engine) as session:
        return [as_dict(r) for r in session.exec(query.order_by(OutboundEmail.due_at, OutboundEmail.id).limit(limit))]


def send_now(services: Services, outbound_id: int) -> str:
    """Due now and queued; a row that is not scheduled (sent, sending, canceled, failed) is left alone."""
    now = datetime.now(UTC)
    with session_scope(services.engine) as session:
        result = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.id == outbound_id, OutboundEmail.status == "scheduled").values(due_at=now, updated_at=now))
        row = session.get(OutboundEmail, outbound_id)
    if row is None:
        return f"no email {outbound_id}"
    if result.rowcount != 1:
        return f"email {outbound_id} is {row.status}: nothing to do"
    from service.outbox.schedule import enqueue_send

    enqueue_send(services, outbound_id, now)
    return f"email {outbound_id} queued to send now"


def cancel(engine: Engine, outbound_id: int, *, reason: str) -> str:
    """One conditional UPDATE: an email a sender already claimed (`sending`) is left to its sender."""
    with session_scope(engine) as session:
        result = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.id == outbound_id, OutboundEmail.status.in_(PENDING_STATUSES))
            .values(status="canceled", canceled_reason=reason, updated_at=datetime.now(UTC)))
        row = session.get(OutboundEmail, outbound_id)
    if row is None:
        return f"no email {outbound_id}"
    return f"email {outbound_id} canceled" if result.rowcount == 1 else f"email {outbound_id} is {row.status}: nothing to do"


def postpone(engine: Engine, outbound_id: int, *, days: int, now: datetime | None = None) -> datetime | None:
    """A scheduled email moved `days` later (from now when it is overdue); the new due time, or None when the row
    is no longer scheduled. Conditional on the status and the due time read, so a sender's claim always wins."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if row is None or row.status != "scheduled":
            return None
        due = max(row.due_at, now) + timedelta(days=days)
        result = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.id == outbound_id, OutboundEmail.status == "scheduled", OutboundEmail.due_at == row.due_at)
            .values(due_at=due, updated_at=now).execution_options(synchronize_session=False))
    return due if result.rowcount == 1 else None


def release_held(session: Session, outcome_id: int, *, now: datetime | None = None) -> list[tuple[int, datetime]]:
    """The rep confirmed (or answered the debrief): the outcome's held emails become scheduled, none earlier than
    now. One conditional UPDATE, so a row canceled meanwhile stays canceled. Returns (id, due_at) to enqueue."""
    now = now or datetime.now(UTC)
    rows = session.execute(
        sa.update(OutboundEmail)
        .where(OutboundEmail.outcome_id == outcome_id, OutboundEmail.status == "held")
        .values(status="scheduled", updated_at=now,
                due_at=sa.case((OutboundEmail.due_at < now, now), else_=OutboundEmail.due_at))
        .returning(OutboundEmail.id, OutboundEmail.due_at)).all()
    session.execute(sa.update(Outcome).where(Outcome.id == outcome_id, Outcome.confirmed_at.is_(None))
                    .values(confirmed_at=now))
    return [(row.id, row.due_at) for row in rows]


def retry_failed(services: Services) -> str:
    """Emails the relay failed (failure "relay": our sender, login, content, an unreachable relay) back to
    scheduled, due now, with a fresh count of tries, and queued: once the relay is fixed they go out."""
    now = datetime.now(UTC)
    with session_scope(services.engine) as session:
        revived = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.status == "failed", OutboundEmail.failure == "relay")
            .values(status="scheduled", failure=None, attempts=0, due_at=now, updated_at=now)
            .returning(OutboundEmail.id, OutboundEmail.due_at)).all()
    _enqueue(services, revived)
    return f"{len(revived)} emails failed by the relay scheduled to send again now"


def clear_undeliverable(services: Services, customer_id: int | None = None, *, email: str | None = None) -> str:
    """Take a customer's (by id or address) undeliverable mark off, and give back their emails it canceled that
    are still to come (held again when their outcome still waits for the rep's confirmation); past ones stay
    canceled."""
    now = datetime.now(UTC)
    which = Customer.id == customer_id if email is None else Customer.email == email.strip().lower()
    with session_scope(services.engine) as session:
        customer = session.exec(select(Customer).where(which)).first()
        if customer is None:
            return f"no customer {email or customer_id}"
        cleared = session.execute(sa.update(Customer).where(Customer.id == customer.id, Customer.undeliverable)
                                  .values(undeliverable=False, undeliverable_reason=None)).rowcount
        if not cleared:
            return f"{customer.email} is not marked undeliverable: nothing to do"
        revived = _revive_canceled(session, customer.id, now)
    _enqueue(services, revived)
    return f"{customer.email} is deliverable again; {len(revived)} emails still to come scheduled again"


def _revive_canceled(session: Session, customer_id: int, now: datetime) -> list:
    """The customer's future emails canceled as undeliverable, of outcomes still current, back to held/scheduled
    (one conditional UPDATE each); returns the scheduled ones as (id, due_at)."""
    current = select(Outcome.id).where(Outcome.superseded_by.is_(None))
    waiting = current.where(Outcome.held_reason.is_not(None), Outcome.confirmed_at.is_(None))
    canceled = (OutboundEmail.customer_id == customer_id, OutboundEmail.status == "canceled",
                OutboundEmail.canceled_reason == "undeliverable", OutboundEmail.due_at > now)
    session.execute(sa.update(OutboundEmail).where(*canceled, OutboundEmail.outcome_id.in_(waiting))
                    .values(status="held", canceled_reason=None, updated_at=now))
    mine = sa.or_(OutboundEmail.outcome_id.is_(None), OutboundEmail.outcome_id.in_(current))
    return session.execute(sa.update(OutboundEmail).where(*canceled, mine)
                           .values(status="scheduled", canceled_reason=None, updated_at=now)
                           .returning(OutboundEmail.id, OutboundEmail.due_at)).all()


def _enqueue(services: Services, sends: list) -> None:
    from service.outbox.schedule import enqueue_sends

    try:
        enqueue_sends(services, [(row[0], row[1]) for row in sends])
    except Exception:  # Redis away: the rows are scheduled in the database, the reconciler queues them
        logger.warning("%s emails not queued now; the reconciler will", len(sends), exc_info=True)
