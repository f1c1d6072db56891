"""The inbox in the database: store raw bytes first, then read them, record the verdict and its effects.

Reading is pure and happens outside the transaction; the verdicts of a whole batch are then written in one
commit, with what they change beyond their own rows (outcomes, plans, opt-outs): the `effects` function the
pipeline passes in, so intake knows nothing of the stages after it. A message whose reading raises is counted (and quarantined at the last attempt) without touching the
others; a batch whose commit fails is recorded again message by message, so only the culprit is counted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.db import UNAVAILABLE, session_scope, storable, storable_text
from service.intake.mime import synthetic_message_id
from service.intake.reading import Reading, RepInfo, read_raw
from service.models import Customer, InboundMessage, Rep, RepAddress, utcnow
from service.settings import Settings

logger = logging.getLogger(__name__)

_MSGID = re.compile(rb"<[^<>\s]+>")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def load_reps(session: Session) -> dict[str, RepInfo]:
    """Every active rep by each of their addresses (lowercased)."""
    reps = {r.id: r for r in session.exec(select(Rep).where(Rep.active == sa.true()))}
    found = {r.email.lower(): RepInfo(r.id, r.email, r.name, r.timezone) for r in reps.values()}
    for alias in session.exec(select(RepAddress)):
        if alias.rep_id in reps:
            rep = reps[alias.rep_id]
            found[alias.email.lower()] = RepInfo(rep.id, rep.email, rep.name, rep.timezone)
    return found


@dataclass
class BatchDirectory:
    """Reps, and which Message-IDs arrived before a given row: everything a batch needs, loaded at once."""

    reps: dict[str, RepInfo]
    first_ids: dict[str, int]
    current_id: int | None = None

    def rep(self, address: str) -> RepInfo | None:
        return self.reps.get(address.lower())

    def seen(self, message_id: str) -> bool:
        first = self.first_ids.get(message_id)
        return first is not None and (self.current_id is None or first < self.current_id)


def directory_for(session: Session, message_ids: Iterable[str]) -> BatchDirectory:
    ids = list(set(message_ids))
    first: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        query = select(InboundMessage.message_id, sa.func.min(InboundMessage.id)).where(
            InboundMessage.message_id.in_(ids[start:start + 500])).group_by(InboundMessage.message_id)
        first.update(dict(session.exec(query).all()))
    return BatchDirectory(load_reps(session), first)


def message_id_of(raw: bytes) -> str:
    """The Message-ID a row is keyed by (a stable synthetic one when the header is missing)."""
    head = _HEADER_END.split(raw[:131072], maxsplit=1)[0]
    try:
        value = BytesHeaderParser().parsebytes(head + b"\n\n").get("Message-ID", "")
    except Exception:  # a header block so broken it cannot be read: still keyed, never lost
        value = ""
    match = _MSGID.search(str(value).encode("utf-8", "replace"))
    return storable_text(match.group(0).decode("utf-8", "replace")) if match else synthetic_message_id(raw)


def inbound_values(raw: bytes, *, mailbox: str, uidvalidity: int | None, uid: int | None, folder: str | None,
                   **overrides) -> dict:
    """Column values of a new inbound row (for bulk INSERTs of a fetched batch)."""
    now = datetime.now(UTC)
    values = {"mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid, "message_id": None, "raw": raw,
              "size": len(raw), "received_at": now, "status": "new", "reason": None, "attempts": 0,
              "folder": folder, **overrides}
    values["message_id"] = values["message_id"] or message_id_of(raw)
    return values


def store_raw(session: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None = None,
              uid: int | None = None, folder: str | None = None) -> InboundMessage:
    """Keep the raw bytes as a new row (the caller commits); reading comes later."""
    row = InboundMessage(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, message_id=message_id_of(raw),
                         raw=raw, size=len(raw), folder=folder)
    session.add(row)
    return row


@dataclass
class Recorded:
    statuses: dict[int, str]
    # (outbound id, due_at) of every email planned by this batch: enqueued once the batch is committed.
    planned: list[tuple[int, datetime]]


# What a batch's readings change beyond their own rows, written in the batch's transaction; returns the emails
# to enqueue after the commit (the pipeline's `effects`).
Effects = Callable[[Session, Settings, dict[int, Reading]], list[tuple[int, datetime]]]


@dataclass
class LoadedBatch:
    """The raw messages of a batch and what reading them needs to know: picklable, for a reader process."""

    messages: list[tuple[int, str, int, bytes]]  # id, message_id, size, raw
    directory: BatchDirectory


def load_batch(engine: Engine, inbound_ids: list[int]) -> LoadedBatch:
    with session_scope(engine) as session:
        rows = session.exec(select(InboundMessage.id, InboundMessage.message_id, InboundMessage.size,
                                   InboundMessage.raw).where(InboundMessage.id.in_(inbound_ids),
                                                             InboundMessage.status == "new")
                            .order_by(InboundMessage.id)).all()
        directory = directory_for(session, [r[1] for r in rows])
    return LoadedBatch([(r[0], r[1], r[2], r[3] or b"") for r in rows], directory)


def read_batch(batch: LoadedBatch, settings: Settings) -> dict[int, Reading | BaseException]:
    """Pure: each message's Reading, or the exception its reading raised (the others go on)."""
    return {inbound_id: _read_or_fail(inbound_id, message_id, size, raw, settings, batch.directory)
            for inbound_id, message_id, size, raw in batch.messages}


def record_batch(engine: Engine, settings: Settings, readings: dict[int, Reading | BaseException],
                 effects: Effects) -> Recorded:
    """Write the verdicts, customers, outcomes and plans of a batch in one transaction."""
    with session_scope(engine) as session:
        waiting = set(session.exec(select(InboundMessage.id).where(
            InboundMessage.id.in_(list(readings)), InboundMessage.status == "new")))
        read = {i: r for i, r in sorted(readings.items()) if i in waiting and isinstance(r, Reading)}
        _remember_customers(session, [r for r in read.values() if r.accepted])
        statuses = _record_readings(session, read)
        failed = sorted(waiting - set(read))
        for row in session.exec(select(InboundMessage).where(InboundMessage.id.in_(failed))) if failed else ():
            _record_error(row, readings[row.id], settings)
            statuses[row.id] = row.status
        return Recorded(dict(sorted(statuses.items())), effects(session, settings, read))


def record_batch_or_each(engine: Engine, settings: Settings, readings: dict[int, Reading | BaseException],
                         effects: Effects) -> Recorded:
    """record_batch; if its commit fails, each message alone, so one poison message never takes the others."""
    if len(readings) > 1:
        try:
            return record_batch(engine, settings, readings, effects)
        except UNAVAILABLE:  # the database is away: no message is at fault, the caller waits and tries again
            raise
        except Exception:
            logger.exception("a batch of %s could not be recorded: recording each message alone", len(readings))
    result = Recorded({}, [])
    for inbound_id, reading in sorted(readings.items()):
        alone = _record_alone(engine, settings, inbound_id, reading, effects)
        result.statuses.update(alone.statuses)
        result.planned += alone.planned
    return result


def _record_alone(engine: Engine, settings: Settings, inbound_id: int, reading: Reading | BaseException,
                  effects: Effects) -> Recorded:
    try:
        return record_batch(engine, settings, {inbound_id: reading}, effects)
    except UNAVAILABLE:
        raise
    except Exception as error:  # counted on its row, quarantined at the last attempt
        logger.exception("inbound %s: could not be recorded", inbound_id)
        return Recorded({inbound_id: record_failure(engine, settings, inbound_id, error)}, [])


def _read_or_fail(inbound_id: int, message_id: str, size: int, raw: bytes, settings: Settings,
                  directory: BatchDirectory) -> Reading | BaseException:
    if size > settings.max_message_bytes:
        return OverflowError(f"too_large: {size} bytes (limit {settings.max_message_bytes})")
    directory.current_id = inbound_id
    try:
        return _storable(read_raw(raw, settings, directory))
    except Exception as error:  # counted on the row; the rest of the batch goes on
        logger.exception("inbound %s %s: reading failed", inbound_id, message_id)
        return error


def _storable(reading: Reading) -> Reading:
    """The reading in text the database takes (a `=00` in a rep's mail); the raw bytes keep what was sent."""
    return Reading(**storable(reading.to_json()))


def _record_error(row: InboundMessage, error: BaseException, settings: Settings) -> None:
    if isinstance(error, OverflowError):
        _quarantine(row, str(error))
    else:
        _count_failure(row, error, settings)
    logger.info("inbound %s %s: %s %s", row.id, row.message_id, row.status, row.reason or "")


def _count_failure(row: InboundMessage, error: BaseException, settings: Settings) -> None:
    """Count a failed attempt; quarantine once the attempts are used up, so the rest are never blocked."""
    row.attempts += 1
    row.error = storable_text(f"{type(error).__name__}: {error}")[:2000]
    if row.attempts >= settings.max_attempts:
        _quarantine(row, f"failed {row.attempts} times: {row.error}"[:500])


def record_failure(engine: Engine, settings: Settings, inbound_id: int, error: BaseException) -> str:
    """Count a failure that happened outside the reading (e.g. the batch's commit itself failed)."""
    with session_scope(engine) as session:
        row = session.get(InboundMessage, inbound_id)
        _count_failure(row, error, settings)
        return row.status


def _quarantine(row: InboundMessage, reason: str) -> None:
    row.status, row.reason, row.processed_at = "quarantined", reason, datetime.now(UTC)


_INBOUND = InboundMessage.__table__
# One UPDATE statement run for the whole batch (executemany): ORM objects cost more than the reading itself.
_RECORD_READING = (_INBOUND.update().where(_INBOUND.c.id == sa.bindparam("row_id"))
                   .values(reading=sa.bindparam("reading"), message_id=sa.bindparam("message_id"),
                           rep_id=sa.bindparam("rep_id"), status=sa.bindparam("status"),
                           reason=sa.bindparam("reason"), processed_at=sa.bindparam("processed_at")))


def _record_readings(session: Session, readings: dict[int, Reading]) -> dict[int, str]:
    """Write each reading's verdict on its row."""
    if not readings:
        return {}
    now = datetime.now(UTC)
    values = [{"row_id": inbound_id, "reading": reading.to_json(), "message_id": reading.message_id,
               "rep_id": reading.rep_id, "status": "processed" if reading.accepted else "ignored",
               "reason": reading.ignored_reason, "processed_at": now} for inbound_id, reading in readings.items()]
    session.flush()
    session.connection().execute(_RECORD_READING, values)
    for value in values:
        logger.info("inbound %s %s: %s %s", value["row_id"], value["message_id"], value["status"],
                    value["reason"] or "")
    return {value["row_id"]: value["status"] for value in values}


def _remember_customers(session: Session, readings: list[Reading]) -> None:
    """Create the customers met in these readings (one query for the batch), filling in missing names."""
    people = {c["email"]: (c["name"], r.language) for r in readings for c in r.customers}
    known = {c.email: c for c in session.exec(select(Customer).where(Customer.email.in_(list(people))))}
    now = utcnow()
    new = [{"email": email, "name": name, "language": language, "timezone": None, "undeliverable": False,
            "undeliverable_reason": None, "created_at": now}
           for email, (name, language) in people.items() if email not in known]
    if new:  # one INSERT for the batch: building ORM objects one by one cost more than the insert itself
        session.connection().execute(Customer.__table__.insert(), new)
    for email, (name, _) in people.items():
        if email in known and name and not known[email].name:
            known[email].name = name
