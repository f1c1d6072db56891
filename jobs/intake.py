"""Intake jobs."""

from __future__ import annotations

from service import context
from service.pipeline.process import process_message as process


def process_message(inbound_id: int) -> str:
    """Read one stored message again (the admin's "read again"); plans and enqueues its emails."""
    return process(context.current(), inbound_id)
