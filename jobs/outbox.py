"""Outbox jobs."""

from __future__ import annotations

from rq import get_current_job

from service import context
from service.outbox.schedule import reconcile as reconcile_outbox
from service.outbox.sender import send_outbound


def send_email(outbound_id: int) -> str:
    """Send this scheduled email when it is due, and every other email due by then."""
    job = get_current_job()
    return send_outbound(context.current(), outbound_id, job_id=job.id if job is not None else None)


def reconcile() -> int:
    """Re-enqueue every scheduled email missing from Redis."""
    return reconcile_outbox(context.current())
