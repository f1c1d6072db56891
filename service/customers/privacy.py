"""Data care: raw mail retention, and a customer's data exported or forgotten on request."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from service import events
from service.db import session_scope
from service.models import (
    Customer,
    InboundMessage,
    OutboundEmail,
    Outcome,
    OutcomeCustomer,
    Suppression,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)


def purge_raw(engine: Engine, days: int, *, now: datetime | None = None) -> int:
    """Delete raw bodies older than `days` (the reading stays); 0 days keeps them forever."""
    if days <= 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with session_scope(engine) as session:
        result = session.execute(sa.update(InboundMessage).where(
            InboundMessage.received_at < cutoff, InboundMessage.status != "new",
            InboundMessage.raw.is_not(None)).values(raw=None))
    if result.rowcount:
        logger.info("retention: raw bodies of %s messages older than %s days deleted", result.rowcount, days)
    return result.rowcount or 0


def _mentions(email: str):
    """Inbound rows whose reading names this address (portable: the JSON compared as text)."""
    return sa.cast(InboundMessage.reading, sa.Text).contains(f'"{email}"')


def export_customer(engine: Engine, email: str) -> dict:
    """Everything Keepwarm holds about one customer address, as JSON-ready data."""
    email = email.strip().lower()
    with session_scope(engine) as session:
        customer = session.exec(select(Customer).where(Customer.email == email)).first()
        outcome_ids = _outcome_ids(session, customer)
        return {
            "email": email,
            "customer": customer.model_dump(mode="json") if customer else None,
            "suppressed": session.exec(select(Suppression).where(Suppression.email == email)).first() is not None,
            "outcomes": [o.model_dump(mode="json") for o in session.exec(
                select(Outcome).where(Outcome.id.in_(outcome_ids)))],
            "emails": [_without_ids(r.model_dump(mode="json")) for r in session.exec(
                select(OutboundEmail).where(OutboundEmail.to_address == email))],
            "inbound": [{"id": r.id, "message_id": r.message_id, "received_at": r.received_at.isoformat(),
                         "status": r.status, "reading": r.reading}
                        for r in session.exec(select(InboundMessage).where(_mentions(email)))],
        }


def _without_ids(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in {"rep_id", "customer_id"}}


def _outcome_ids(session, customer: Customer | None) -> list[int]:
    if customer is None:
        return []
    return list(session.exec(select(OutcomeCustomer.outcome_id).where(OutcomeCustomer.customer_id == customer.id)))


def forget_customer(engine: Engine, email: str) -> dict:
    """Erase a customer: their emails, their link to outcomes, the raw mail and readings that name them.

    The address stays on the suppression list (it is added if missing): forgetting someone must not make
    Keepwarm write to them again the next time a rep BCCs a meeting with them.
    """
    email = email.strip().lower()
    with session_scope(engine) as session:
        customer = session.exec(select(Customer).where(Customer.email == email)).first()
        summary = {"emails_deleted": _delete_emails(session, email),
                   "messages_scrubbed": _scrub_inbound(session, email),
                   "outcomes_scrubbed": _scrub_outcomes(session, customer)}
        if customer is not None:
            session.delete(customer)
        summary["webhook_bodies_scrubbed"] = _scrub_webhooks(session, email)
        if session.exec(select(Suppression).where(Suppression.email == email)).first() is None:
            session.add(Suppression(email=email, reason="forgotten on request"))
            events.emit_unsubscribed(session, email, "forgotten on request")
    logger.info("customer forgotten: %s", summary)
    return summary


def _delete_emails(session, email: str) -> int:
    return session.execute(sa.delete(OutboundEmail).where(OutboundEmail.to_address == email)).rowcount or 0


def _scrub_inbound(session, email: str) -> int:
    return session.execute(sa.update(InboundMessage).where(_mentions(email)).values(
        raw=None, reading=None, reason=sa.func.coalesce(InboundMessage.reason, "") + " (forgotten)")).rowcount or 0


def _scrub_webhooks(session, email: str) -> int:
    """Webhook deliveries already done (delivered or failed) that name the address keep their log line, not their
    body; pending ones still go out, since the receiver must learn what changed."""
    return session.execute(sa.update(WebhookDelivery).where(
        WebhookDelivery.status.in_(("delivered", "failed")), WebhookDelivery.body.contains(f'"{email}"'))
        .values(body='{"forgotten":true}')).rowcount or 0


def _scrub_outcomes(session, customer: Customer | None) -> int:
    """Outcomes keep their figures for the team's statistics, but lose the words that could name anyone."""
    if customer is None:
        return 0
    ids = _outcome_ids(session, customer)
    session.execute(sa.delete(OutcomeCustomer).where(OutcomeCustomer.customer_id == customer.id))
    session.execute(sa.update(Outcome).where(Outcome.id.in_(ids)).values(
        note="", evidence=[], decision_makers=[], meeting_subject="", thread_message_id=None, thread_references=[]))
    return len(ids)
