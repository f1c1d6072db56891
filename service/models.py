"""The tables. The database is the source of truth; Redis only carries work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no zones) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Rep(SQLModel, table=True):
    """A salesperson allowed to trigger follow-ups."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column_kwargs={"unique": True}, index=True)
    name: str
    timezone: str = "UTC"
    active: bool = True
    created_at: datetime = _when(default_factory=utcnow)


class RepAddress(SQLModel, table=True):
    """An alternative address of a rep (an alias, a second mailbox)."""

    __tablename__ = "rep_address"
    id: int | None = Field(default=None, primary_key=True)
    rep_id: int = Field(foreign_key="rep.id", index=True)
    email: str = Field(sa_column_kwargs={"unique": True})


class Customer(SQLModel, table=True):
    """Someone a rep met; still our customer after a no."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column_kwargs={"unique": True}, index=True)
    name: str | None = None
    language: str | None = None
    timezone: str | None = None
    undeliverable: bool = False
    undeliverable_reason: str | None = None
    created_at: datetime = _when(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """An address that must never receive another email (opt-out or hard bounce)."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column_kwargs={"unique": True}, index=True)
    reason: str
    created_at: datetime = _when(default_factory=utcnow)


class MailboxState(SQLModel, table=True):
    """Where the poller stands in one IMAP folder."""

    __tablename__ = "mailbox_state"
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(sa_column_kwargs={"unique": True})
    uidvalidity: int | None = Field(default=None, sa_type=sa.BigInteger)
    last_uid: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = _when(default_factory=utcnow)


INBOUND_STATUSES = ("new", "processed", "ignored", "quarantined")


class InboundMessage(SQLModel, table=True):
    """One email as received: raw bytes kept so it can be read again, plus what we made of it."""

    __tablename__ = "inbound_message"
    __table_args__ = (sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_imap_uid"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(index=True)
    uidvalidity: int | None = Field(default=None, sa_type=sa.BigInteger)
    uid: int | None = Field(default=None, sa_type=sa.BigInteger)
    message_id: str = Field(index=True)
    raw: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))
    size: int = 0
    received_at: datetime = _when(default_factory=utcnow, index=True)
    status: str = Field(default="new", index=True)
    reason: str | None = None
    attempts: int = 0
    error: str | None = None
    reading: dict | None = Field(default=None, sa_type=sa.JSON)
    rep_id: int | None = Field(default=None, foreign_key="rep.id")
    # Where the message lives on the server now: the intake folder until it is moved after processing.
    folder: str | None = None
    processed_at: datetime | None = _when(default=None)

