"""Acting on the outbox by hand: list, send now, cancel (CLI and admin pages share these)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from service.context import Services
from service.db import session_scope
from service.models import OutboundEmail


def as_dict(row: OutboundEmail) -> dict:
    return {"id": row.id, "kind": row.kind, "variant": row.variant, "to": row.to_address,
            "due_at": row.due_at.isoformat(), "status": row.status, "message_id": row.message_id,
            "outcome_id": row.outcome_id, "language": row.language, "attempts": row.attempts,
            "reason": row.canceled_reason or row.last_error,
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
    with session_scope(engine) as session:
        result = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.id == outbound_id, OutboundEmail.status == "scheduled")
            .values(status="canceled", canceled_reason=reason, updated_at=datetime.now(UTC)))
        row = session.get(OutboundEmail, outbound_id)
    if row is None:
        return f"no email {outbound_id}"
    return f"email {outbound_id} canceled" if result.rowcount == 1 else f"email {outbound_id} is {row.status}: nothing to do"
