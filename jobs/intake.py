"""Intake jobs."""

from __future__ import annotations

from service import context
from service.intake.store import enqueue_planned, process_inbound


def process_message(inbound_id: int) -> str:
    """Read one stored message (admin's reprocess); plans and enqueues its emails."""
    services = context.current()
    result = process_inbound(services.engine, services.settings, inbound_id)
    enqueue_planned(services, result.planned)
    return result.statuses.get(inbound_id, "missing")
