"""Webhook jobs."""

from __future__ import annotations

from service import context
from service.webhooks.delivery import deliver


def deliver_webhook(delivery_id: int) -> str:
    """One try of one webhook delivery, if it is pending and due (the database says; a stale job does nothing)."""
    return deliver(context.current(), delivery_id)
