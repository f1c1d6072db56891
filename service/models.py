"""The tables. The database is the source of truth; Redis only carries work."""

from __future__ import annotations

from datetime import UTC, date, datetime
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
    # The rep's language for the mail Keepwarm writes to them ("en", "it"); None: the language of their notes.
    language: str | None = None
    # The secret inside the rep's calendar feed URL: revoking the feed draws a new one (None: no feed yet).
    calendar_key: str | None = None
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



class Outcome(SQLModel, table=True):
    """What one meeting email told us: the outcome and the plan's inputs. A newer one for a customer supersedes."""

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id", index=True)
    rep_id: int = Field(foreign_key="rep.id", index=True)
    outcome: str = Field(index=True)
    cause: str | None = None
    reasons: list = Field(default_factory=list, sa_type=sa.JSON)
    recontact_on: date | None = None
    decision_makers: list = Field(default_factory=list, sa_type=sa.JSON)
    evidence: list = Field(default_factory=list, sa_type=sa.JSON)
    note: str = ""
    language: str = "en"
    noemail: bool = False
    # Why the customer emails wait for the rep's confirmation ("unsure: outcome", "too many customers: 42"),
    # or None when they go on their own; confirmed_at is when the rep confirmed (or answered the debrief).
    held_reason: str | None = None
    confirmed_at: datetime | None = _when(default=None)
    meeting_at: datetime = _when()
    meeting_subject: str = ""
    # The recap's Message-ID when the rep BCC'd it to the customer: the thank-you replies in that thread.
    thread_message_id: str | None = None
    thread_references: list = Field(default_factory=list, sa_type=sa.JSON)
    superseded_by: int | None = Field(default=None, foreign_key="outcome.id")
    debrief_submitted_at: datetime | None = _when(default=None)
    created_at: datetime = _when(default_factory=utcnow, index=True)


class OutcomeCustomer(SQLModel, table=True):
    __tablename__ = "outcome_customer"
    outcome_id: int = Field(foreign_key="outcome.id", primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True, index=True)


# rep_answer: Keepwarm's reply to a rep who answered one of its emails by email (what changed, or how to answer).
OUTBOUND_KINDS = ("thank_you", "recontact", "rep_summary", "debrief_reminder", "rep_notice", "rep_answer")
OUTBOUND_STATUSES = ("scheduled", "held", "sending", "sent", "canceled", "failed")
# Not sent yet and not given up: what an opt-out, a newer outcome or a rep's cancel still reaches. A `held`
# email waits for the rep's confirmation; only `scheduled` ones are ever claimed by a sender.
PENDING_STATUSES = ("scheduled", "held")
# Why an email failed. address: the recipient's server refused the address (RCPT 5.1.x / 5.2.1); relay: our relay
# refused it or never answered (sender, login, content, connection); template: rendering it broke a bound;
# compose: it could not be composed (a junk address, no template).
FAILURES = ("address", "relay", "template", "compose")


class OutboundEmail(SQLModel, table=True):
    """One email Keepwarm will send, is sending or sent. Status moves only forward, by conditional UPDATEs."""

    __tablename__ = "outbound_email"
    __table_args__ = (sa.Index("ix_outbound_status_due", "status", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    outcome_id: int | None = Field(default=None, foreign_key="outcome.id", index=True)
    kind: str
    variant: str = "default"
    language: str = "en"
    rep_id: int = Field(foreign_key="rep.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    to_address: str
    to_name: str | None = None
    due_at: datetime = _when()
    status: str = "scheduled"
    # Minted once when the row is created: a resend after a crash carries the same one, so receivers dedupe.
    message_id: str = Field(sa_column_kwargs={"unique": True})
    personal_line: str | None = None
    notice: dict | None = Field(default=None, sa_type=sa.JSON)
    attempts: int = 0
    last_error: str | None = None
    # Why a `failed` row failed: one of FAILURES. Only "address" says the customer's address is bad; "relay"
    # rows are sent again when an admin retries them (outbox.admin.retry_failed) once the relay is fixed.
    failure: str | None = None
    canceled_reason: str | None = None
    # The worker (settings.worker_id) that claimed the row: its next life gives back what it left in `sending`.
    held_by: str | None = None
    sent_at: datetime | None = _when(default=None)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class EmailTemplate(SQLModel, table=True):
    """One version of one email template; the newest valid version of a key is the active one."""

    __tablename__ = "email_template"
    __table_args__ = (sa.UniqueConstraint("kind", "variant", "language", "version", name="uq_template_version"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    variant: str = "default"
    language: str = "en"
    version: int = 1
    subject: str
    text: str
    html: str = ""
    active: bool = True
    author: str = "default"
    last_error: str | None = None
    # Set when the sender stopped this version (it broke the render time or memory bound for one email): it is
    # skipped from then on, the previous version or the shipped default used instead; a new save replaces it.
    broken_at: datetime | None = _when(default=None)
    created_at: datetime = _when(default_factory=utcnow)


class PolicyRecord(SQLModel, table=True):
    """The planning policy as admins set it (JSON of planning.Policy); the newest row wins."""

    __tablename__ = "policy"
    id: int | None = Field(default=None, primary_key=True)
    values: dict = Field(default_factory=dict, sa_type=sa.JSON)
    author: str = "default"
    created_at: datetime = _when(default_factory=utcnow)


class Debrief(SQLModel, table=True):
    """The rep's own analysis of a loss (one per outcome, editable until the link expires)."""

    id: int | None = Field(default=None, primary_key=True)
    outcome_id: int = Field(foreign_key="outcome.id", sa_column_kwargs={"unique": True})
    rep_id: int = Field(foreign_key="rep.id", index=True)
    answers: dict = Field(default_factory=dict, sa_type=sa.JSON)
    plan: str | None = None  # recontact_on_date | meet_decision_makers | new_proposal | stay_in_touch | no_recontact
    recontact_on: date | None = None
    lesson: str | None = None
    submitted_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class Admin(SQLModel, table=True):
    """Someone who may edit templates and settings; passwords are stored only as salted hashes."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column_kwargs={"unique": True}, index=True)
    password_hash: str
    active: bool = True
    # Failed logins in a row, and when the address may try again (growing waits, never a lockout).
    failed_logins: int = 0
    retry_after: datetime | None = _when(default=None)
    # Part of every session's token: raised by logout and by a new password, it ends all of the admin's sessions.
    session_version: int = 0
    last_login_at: datetime | None = _when(default=None)
    created_at: datetime = _when(default_factory=utcnow)


class AuditEntry(SQLModel, table=True):
    """One admin action, kept for the audit log."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)
    admin_id: int | None = Field(default=None, foreign_key="admin.id")
    actor: str = ""
    action: str = Field(index=True)
    target: str = ""
    detail: dict = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _when(default_factory=utcnow, index=True)


# Events a webhook endpoint may subscribe to (service/events.py emits them, in the transaction of the change).
WEBHOOK_EVENTS = ("outcome.recorded", "outcome.changed", "email.scheduled", "email.sent", "email.failed",
                  "email.canceled", "debrief.submitted", "customer.unsubscribed")
# pending: waits for its due_at; sending: claimed by one worker (a lease: updated_at); delivered: a 2xx was
# recorded, never posted again; failed: refused for good, or still failing a day after it was made.
WEBHOOK_DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed")


class WebhookEndpoint(SQLModel, table=True):
    """A URL an admin registered to receive signed events. The signing secret is not stored: it is derived from
    the app's secret key and `salt` (service/webhooks/signing.py), so a copy of the database alone cannot sign."""

    __tablename__ = "webhook_endpoint"
    id: int | None = Field(default=None, primary_key=True)
    url: str
    description: str = ""
    events: list = Field(default_factory=list, sa_type=sa.JSON)
    salt: str
    # The first hex digits of the secret's SHA-256, to tell an admin which secret signs, and to notice that
    # KEEPWARM_SECRET_KEY changed since (every signature would be refused: the delivery says so instead).
    fingerprint: str
    active: bool = True
    created_by: str = ""
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: a row first (in the change's transaction), an RQ job second. The body is frozen
    at emission; a redelivery is a new row with the same event id and the next `redelivery` number."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id", "redelivery", name="uq_webhook_delivery_event"),
        sa.Index("ix_webhook_delivery_status_due", "status", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", index=True)
    event: str
    event_id: str
    redelivery: int = 0
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str = "pending"
    due_at: datetime = _when(default_factory=utcnow)
    attempts: int = 0
    held_by: str | None = None
    response_code: int | None = None
    response_excerpt: str | None = None
    last_error: str | None = None
    duration_ms: int | None = None
    delivered_at: datetime | None = _when(default=None)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)
