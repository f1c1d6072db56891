"""Outbox jobs."""

from __future__ import annotations

from rq import get_current_job

from service import context
from service.outbox.schedule import reconcile as reconcile_outbox
from service.outbox.sender import send_outbound


def send_email(outbound_id: int) -> str:
    """Send one scheduled email (no-op unless it is due and still scheduled)."""
    job = get_current_job()
    retries_left = job.retries_left if job is not None else None
    return send_outbound(context.current(), outbound_id, retries_left=retries_left)


def reconcile() -> int:
    """Re-enqueue every scheduled email missing from Redis."""
    return reconcile_outbox(context.current())
