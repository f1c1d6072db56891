"""Acting on the outbox by hand, for the CLI and the admin pages: list, send now, cancel, postpone, retry relay
failures, clear an undeliverable mark. Each opens its transaction, asks the status owner (`status`) for the
change, and queues what became due."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from service.context import Services
from service.db import session_scope
from service.models import Customer, OutboundEmail
from service.outbox import status
from service.outbox.schedule import enqueue_or_defer


def as_dict(row: OutboundEmail) -> dict:
    return {"id": row.id, "kind": row.kind, "variant": row.variant, "to": row.to_address,
            "due_at": row.due_at.isoformat(), "status": row.status, "message_id": row.message_id,
            "outcome_id": row.outcome_id, "language": row.language, "attempts": row.attempts,
            "reason": row.canceled_reason or row.last_error, "failure": row.failure,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None}


def outbound_query(*, status: str | None = None, kind: str | None = None):
    """The outbox rows of one status and kind (either may be None: all); the CLI and the admin page order it."""
    query = select(OutboundEmail)
    if status:
        query = query.where(OutboundEmail.status == status)
    if kind:
        query = query.where(OutboundEmail.kind == kind)
    return query


def list_outbound(engine: Engine, *, status: str | None = None, kind: str | None = None,
                  limit: int = 500) -> list[dict]:
    query = outbound_query(status=status, kind=kind).order_by(OutboundEmail.due_at, OutboundEmail.id).limit(limit)
    with session_scope(engine) as session:
        return [as_dict(r) for r in session.exec(query)]


def _state(session, outbound_id: int) -> str | None:
    return session.exec(select(OutboundEmail.status).where(OutboundEmail.id == outbound_id)).first()


def send_now(services: Services, outbound_id: int) -> str:
    """Due now and queued; a row that is not scheduled (sent, sending, canceled, failed) is left alone."""
    with session_scope(services.engine) as session:
        done = status.send_now(session, outbound_id)
        now_state = _state(session, outbound_id)
    if now_state is None:
        return f"no email {outbound_id}"
    if not done:
        return f"email {outbound_id} is {now_state}: nothing to do"
    enqueue_or_defer(services, [(outbound_id, datetime.now(UTC))])
    return f"email {outbound_id} queued to send now"


def cancel(engine: Engine, outbound_id: int, *, reason: str) -> str:
    """An email a sender already claimed (`sending`) is left to its sender."""
    with session_scope(engine) as session:
        done = status.cancel(session, OutboundEmail.id == outbound_id, reason=reason)
        now_state = _state(session, outbound_id)
    if now_state is None:
        return f"no email {outbound_id}"
    return f"email {outbound_id} canceled" if done else f"email {outbound_id} is {now_state}: nothing to do"


def postpone(services: Services, outbound_id: int, *, days: int) -> datetime | None:
    """A scheduled email moved `days` later and queued for its new time; None when it is no longer scheduled."""
    with session_scope(services.engine) as session:
        due = status.postpone(session, outbound_id, days=days)
    if due is not None:
        enqueue_or_defer(services, [(outbound_id, due)])
    return due


def confirm(services: Services, outcome_id: int) -> int:
    """The rep confirmed an outcome: its held emails are scheduled and queued; how many."""
    with session_scope(services.engine) as session:
        released = status.release_held(session, outcome_id)
    enqueue_or_defer(services, released)
    return len(released)


def retry_failed(services: Services) -> str:
    """Emails the relay failed (failure "relay": our sender, login, content, an unreachable relay) back to
    scheduled, due now, with a fresh count of tries, and queued: once the relay is fixed they go out."""
    with session_scope(services.engine) as session:
        revived = status.retry_failed(session)
    enqueue_or_defer(services, revived)
    return f"{len(revived)} emails failed by the relay scheduled to send again now"


def clear_undeliverable(services: Services, customer_id: int | None = None, *, email: str | None = None) -> str:
    """Take a customer's (by id or address) undeliverable mark off; their emails it canceled that are still to
    come are given back (see status.clear_undeliverable) and queued."""
    which = Customer.id == customer_id if email is None else Customer.email == email.strip().lower()
    with session_scope(services.engine) as session:
        customer = session.exec(select(Customer).where(which)).first()
        if customer is None:
            return f"no customer {email or customer_id}"
        revived = status.clear_undeliverable(session, customer.id)
        address = customer.email
    if revived is None:
        return f"{address} is not marked undeliverable: nothing to do"
    enqueue_or_defer(services, revived)
    return f"{address} is deliverable again; {len(revived)} emails still to come scheduled again"
