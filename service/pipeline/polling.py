"""The mailbox poller, wired to the pipeline: intake's IMAP side fetches, the pipeline records and enqueues."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from service.context import Services
from service.intake.imap import Mailbox
from service.pipeline.process import record
from service.settings import Settings


def poller(settings: Settings, engine: Engine, **options) -> Mailbox:
    """The mailbox poller, recording what it reads through the pipeline (options: url, lock, services)."""
    services = options.pop("services", None) or Services.with_engine(settings, engine)
    return Mailbox(settings, engine, record=lambda readings: record(services, readings), services=services,
                   **options)
