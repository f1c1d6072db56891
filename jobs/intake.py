"""Intake jobs."""

from __future__ import annotations

from service import context
from service.intake.inbox import process_inbound


def process_message(inbound_id: int) -> str:
    """Read one stored message again (admin's reprocess, `keepwarm ingest`)."""
    services = context.current()
    return process_inbound(services.engine, services.settings, inbound_id)
