"""One message through the stages: read and understand it (intake, with the notes reader), plan and record its
emails (planning, outbox), then put them on the queue. The poller, the jobs, the CLI and the admin pages all call
these, with the services they were given.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import Session, select

from service.context import Services
from service.db import session_scope
from service.intake import store
from service.intake.reading import Reading
from service.models import InboundMessage, OutboundEmail
from service.outbox import status
from service.outbox.schedule import enqueue_or_defer
from service.outbox.status import Due
from service.pipeline.record import record_outcomes
from service.pipeline.replies import apply_answer
from service.settings import Settings

logger = logging.getLogger(__name__)


def effects(session: Session, settings: Settings, readings: dict[int, Reading]) -> list[Due]:
    """What a batch's readings change beyond their own rows, in the batch's transaction: a bounce or a spam
    complaint about one of our emails stops mail to that address; a rep's answer to our email is applied; an
    accepted note records its outcome and plans its emails. Returns the emails to enqueue once the transaction is
    committed."""
    due: list[Due] = []
    for inbound_id, reading in readings.items():
        if reading.ignored_reason == "bounce":
            sent_to = _recipients_of(session, reading.reports_on)
            status.mark_undeliverable(session, [a for a in reading.bounced if a in sent_to], "bounced")
            for address in (a for a in reading.complained if a in sent_to):
                status.suppress(session, address, "spam complaint (feedback report)")
        elif reading.accepted and reading.answers:
            due += apply_answer(session, settings, inbound_id, reading)
    notes = [(i, r) for i, r in readings.items() if r.accepted and not r.answers]
    return due + record_outcomes(session, settings, notes)


def _recipients_of(session: Session, message_ids: list[str]) -> set[str]:
    """Who our emails with these Message-IDs went to: a report counts only for the address its email was sent to."""
    if not message_ids:
        return set()
    query = select(OutboundEmail.to_address).where(OutboundEmail.message_id.in_(message_ids))
    return {address.lower() for address in session.exec(query)}


def record(services: Services, readings: dict[int, Reading | BaseException]) -> dict[int, str]:
    """Record a read batch (one commit, else message by message) and enqueue what it planned; the statuses."""
    result = store.record_batch_or_each(services.engine, services.settings, readings, effects)
    # Earliest first: with RQ 3.0, a send queued now after one queued for later in the same Redis pipeline fails
    # the whole chunk ("Commands without an initial WATCH"), which only the reconciler made up for.
    enqueue_or_defer(services, result.planned)
    return result.statuses


def process(services: Services, inbound_ids: list[int]) -> dict[int, str]:
    """Read stored messages, record them, enqueue their emails; each message's status."""
    batch = store.load_batch(services.engine, inbound_ids)
    return record(services, store.read_batch(batch, services.settings))


def process_message(services: Services, inbound_id: int) -> str:
    """One stored message (the admin's "read again"); its status."""
    return process(services, [inbound_id]).get(inbound_id, "missing")


def ingest_files(services: Services, paths: list[Path]) -> list[tuple[str, str, str | None]]:
    """Store and read .eml files exactly as if they had arrived in the mailbox: (file, status, reason) each.

    A file that cannot be stored or recorded gives the status `error` and why; the next file goes on.
    """
    results = []
    for path in paths:
        try:
            results.append(_ingest_one(services, path))
        except Exception as error:  # one bad file never stops the others; its line says what went wrong
            reason = str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
            logger.warning("ingest %s failed: %s", path, reason)
            results.append((str(path), "error", reason.splitlines()[0] if reason else type(error).__name__))
    return results


def _ingest_one(services: Services, path: Path) -> tuple[str, str, str | None]:
    with session_scope(services.engine) as session:
        row = store.store_raw(session, path.read_bytes(), mailbox="cli")
        session.flush()
        inbound_id = row.id
    state = process_message(services, inbound_id)
    with session_scope(services.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        return str(path), state, row.reason or (row.error if state == "new" else None)
