"""The inbox in the database: store raw bytes first, then read them, record the verdict and its effects."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.db import session_scope
from service.intake.mime import read_letter, synthetic_message_id
from service.intake.reading import Reading, RepInfo, read_raw
from service.models import Customer, InboundMessage, Rep, RepAddress, Suppression
from service.settings import Settings

logger = logging.getLogger(__name__)


class DbDirectory:
    """Reps and seen Message-IDs, from the database; reps are loaded once per directory."""

    def __init__(self, session: Session, *, exclude_id: int | None = None):
        self._session = session
        self._exclude_id = exclude_id
        self._reps = _load_reps(session)

    def rep(self, address: str) -> RepInfo | None:
        return self._reps.get(address.lower())

    def seen(self, message_id: str) -> bool:
        query = select(InboundMessage.id).where(InboundMessage.message_id == message_id)
        if self._exclude_id is not None:
            query = query.where(InboundMessage.id < self._exclude_id)
        return self._session.exec(query.limit(1)).first() is not None


def _load_reps(session: Session) -> dict[str, RepInfo]:
    reps = {r.id: r for r in session.exec(select(Rep).where(Rep.active == True))}  # noqa: E712
    found = {r.email.lower(): RepInfo(r.id, r.email, r.name, r.timezone) for r in reps.values()}
    for alias in session.exec(select(RepAddress)):
        if alias.rep_id in reps:
            rep = reps[alias.rep_id]
            found[alias.email.lower()] = RepInfo(rep.id, rep.email, rep.name, rep.timezone)
    return found


def message_id_of(raw: bytes) -> str:
    """The Message-ID a row is keyed by (a stable synthetic one when the header is missing)."""
    try:
        return read_letter(raw[:65536]).message_id or synthetic_message_id(raw)
    except Exception:  # a header block so broken it cannot be read: still keyed, never lost
        return synthetic_message_id(raw)


def store_raw(session: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None = None,
              uid: int | None = None, folder: str | None = None) -> InboundMessage:
    """Keep the raw bytes as a new row (the caller commits); reading comes later."""
    row = InboundMessage(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, message_id=message_id_of(raw),
                         raw=raw, size=len(raw), folder=folder)
    session.add(row)
    return row


def process_inbound(engine: Engine, settings: Settings, inbound_id: int) -> str:
    """Read one stored message and record what it is; returns the new status."""
    with session_scope(engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None or row.status != "new":
            return row.status if row else "missing"
        if row.size > settings.max_message_bytes:
            return _quarantine(row, f"too_large: {row.size} bytes (limit {settings.max_message_bytes})")
        reading = read_raw(row.raw or b"", settings, DbDirectory(session, exclude_id=row.id))
        _record(session, row, reading)
        logger.info("inbound %s %s: %s %s", row.id, row.message_id, row.status, row.reason or "")
        return row.status


def record_failure(engine: Engine, settings: Settings, inbound_id: int, error: BaseException) -> str:
    """Count a failed attempt; quarantine once the attempts are used up, so the rest are never blocked."""
    with session_scope(engine) as session:
        row = session.get(InboundMessage, inbound_id)
        row.attempts += 1
        row.error = f"{type(error).__name__}: {error}"[:2000]
        if row.attempts >= settings.max_attempts:
            _quarantine(row, f"failed {row.attempts} times: {row.error}"[:500])
        logger.warning("inbound %s attempt %s failed: %s", row.id, row.attempts, row.error)
        return row.status


def _quarantine(row: InboundMessage, reason: str) -> str:
    row.status, row.reason, row.processed_at = "quarantined", reason, datetime.now(UTC)
    return row.status


def _record(session: Session, row: InboundMessage, reading: Reading) -> None:
    row.reading = reading.to_json()
    row.message_id = reading.message_id
    row.rep_id = _rep_id(session, reading)
    row.status = "processed" if reading.accepted else "ignored"
    row.reason = reading.ignored_reason
    row.processed_at = datetime.now(UTC)
    if reading.ignored_reason == "bounce":
        _mark_undeliverable(session, reading.bounced)
        _suppress(session, reading.complained, "spam complaint (feedback report)")
    if reading.accepted:
        _remember_customers(session, reading)


def _rep_id(session: Session, reading: Reading) -> int | None:
    if not reading.rep:
        return None
    return session.exec(select(Rep.id).where(Rep.email == reading.rep["email"])).first()


def _mark_undeliverable(session: Session, addresses: list[str]) -> None:
    """A bounce about a customer's address: stop writing to it."""
    for customer in session.exec(select(Customer).where(Customer.email.in_(addresses))):
        customer.undeliverable, customer.undeliverable_reason = True, "bounced"
        logger.info("customer %s marked undeliverable after a bounce", customer.email)


def _suppress(session: Session, addresses: list[str], reason: str) -> None:
    known = set(session.exec(select(Suppression.email).where(Suppression.email.in_(addresses))))
    for address in set(addresses) - known:
        session.add(Suppression(email=address, reason=reason))


def _remember_customers(session: Session, reading: Reading) -> None:
    emails = [c["email"] for c in reading.customers]
    known = {c.email: c for c in session.exec(select(Customer).where(Customer.email.in_(emails)))}
    for person in reading.customers:
        customer = known.get(person["email"])
        if customer is None:
            session.add(Customer(email=person["email"], name=person["name"], language=reading.language))
        elif person["name"] and not customer.name:
            customer.name = person["name"]


def ingest_files(engine: Engine, settings: Settings, paths) -> list[tuple[str, str, str | None]]:
    """Store and read .eml files exactly as if they had arrived in the mailbox."""
    results = []
    for path in paths:
        with session_scope(engine) as session:
            row = store_raw(session, path.read_bytes(), mailbox="cli")
            session.flush()
            inbound_id = row.id
        try:
            status = process_inbound(engine, settings, inbound_id)
        except Exception as error:  # counted and reported; the next file still goes through
            status = record_failure(engine, settings, inbound_id, error)
        with session_scope(engine) as session:
            row = session.get(InboundMessage, inbound_id)
            results.append((str(path), status, row.reason))
    return results
