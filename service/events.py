"""Webhook events, written in the transaction of the change they report (a transactional outbox).

`emit` adds one WebhookDelivery row per active endpoint subscribed to the event, on the caller's session: the
change and its events commit together or not at all. With no endpoint, an emission is one indexed SELECT and
builds nothing. Once the transaction commits, the new rows are put on the `webhooks` queue; when Redis is away (or
the process never configured its services), the worker's reconciler queues them from the database instead.

An event's id is derived from (event, object, occurrence), never drawn at random: the same occurrence emitted twice
inserts nothing the second time (a unique index), and a redelivery carries the same id, so receivers dedupe by it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from service import context
from service.models import (
    Customer,
    Debrief,
    OutboundEmail,
    Outcome,
    OutcomeCustomer,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
DELIVER_JOB = "jobs.webhooks.deliver_webhook"
DELIVER_TIMEOUT = 120  # seconds RQ lets one delivery job run (the HTTP timeout itself is far shorter)
_NAMESPACE = uuid.UUID("5b0f6f3e-6c1d-4b53-9d8e-2f1a7c4e9b10")
_PENDING_KEY = "keepwarm.webhook_deliveries"  # session.info: rows to queue once the transaction commits

Occurrence = tuple[str, dict]  # (what makes this occurrence unique for its event, the object it carries)


def event_id(event: str, key: str) -> str:
    """The id receivers dedupe on: the same for every delivery and redelivery of one occurrence."""
    return "evt_" + uuid.uuid5(_NAMESPACE, f"{event}:{key}").hex


def subscribers(session: Session, event: str) -> list[int]:
    """The active endpoints that want `event` (one small query; no endpoint, no cost beyond it)."""
    rows = session.execute(sa.select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active))
    return [endpoint_id for endpoint_id, events in rows if event in (events or ())]


def emit(session: Session, event: str, occurrences: Iterable[Occurrence] | Callable[[], Iterable[Occurrence]], *,
         now: datetime | None = None) -> int:
    """One delivery row per subscribed endpoint and occurrence, in the caller's transaction; how many were new.

    `occurrences` may be a function, called only when someone subscribes: building the objects costs queries."""
    endpoints = subscribers(session, event)
    if not endpoints:
        return 0
    now = now or datetime.now(UTC)
    items = list(occurrences() if callable(occurrences) else occurrences)
    rows = [{"endpoint_id": endpoint_id, "event": event, "event_id": event_id(event, key), "redelivery": 0,
             "body": body(event, event_id(event, key), obj, now), "status": "pending", "due_at": now,
             "attempts": 0, "created_at": now, "updated_at": now}
            for key, obj in items for endpoint_id in endpoints]
    return len(_insert(session, rows)) if rows else 0


def body(event: str, the_event_id: str, obj: dict, created: datetime) -> str:
    """The JSON every delivery of this occurrence posts, byte for byte (the signature covers these bytes)."""
    return json.dumps({"id": the_event_id, "type": event, "created": _iso(created), "data": {"object": obj}},
                      separators=(",", ":"), sort_keys=True, default=str)


def _insert(session: Session, rows: list[dict]) -> list[tuple[int, datetime, int]]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: an occurrence already recorded for an endpoint adds nothing."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WebhookDelivery.__table__)
    table = WebhookDelivery.__table__
    added = []
    for start in range(0, len(rows), INSERT_CHUNK):  # PostgreSQL takes at most 65,535 parameters a statement
        statement = insert.values(rows[start:start + INSERT_CHUNK]).on_conflict_do_nothing(
            index_elements=["endpoint_id", "event_id", "redelivery"]).returning(table.c.id, table.c.due_at,
                                                                                  table.c.attempts)
        added += [(r[0], r[1], r[2]) for r in session.execute(statement)]
    queue_after_commit(session, added)
    return added


INSERT_CHUNK = 500  # rows of 10 values: 5,000 parameters a statement


# ---------------------------------------------------------------------------------------------------- the queue


def job_id(delivery_id: int, attempts: int) -> str:
    """One job per try: a retry's job never collides with the finished job of the try before."""
    return f"webhook-{delivery_id}-{attempts}"


def queue_after_commit(session: Session, rows: list[tuple[int, datetime, int]]) -> None:
    """Queue these deliveries once the session's transaction commits (forgotten if it rolls back)."""
    if not rows:
        return
    pending = session.info.setdefault(_PENDING_KEY, [])
    if not session.info.get(_PENDING_KEY + ".hooked"):
        sa.event.listen(session, "after_commit", _after_commit)
        sa.event.listen(session, "after_rollback", _after_rollback)
        session.info[_PENDING_KEY + ".hooked"] = True
    pending.extend(rows)


def _after_commit(session: Session) -> None:
    rows = session.info.pop(_PENDING_KEY, [])
    services = context.configured()
    if rows and services is not None:
        enqueue_deliveries(services, rows)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def enqueue_deliveries(services: context.Services, rows: Iterable[tuple[int, datetime, int]]) -> int:
    """Put committed deliveries on the queue: now when due, else at their due time. Redis away loses nothing (the
    reconciler queues them from the database); returns how many were queued."""
    rows = list(rows)
    try:
        queue = services.queue(QUEUE)
        with services.redis.pipeline() as pipe:
            pipe.multi()  # as outbox.schedule.enqueue_sends: RQ 3 refuses a pipeline with commands before MULTI
            for delivery_id, due_at, attempts in rows:
                _enqueue(queue, delivery_id, due_at, attempts, pipe)
            pipe.execute()
    except Exception as error:  # committed rows: only delayed until the next reconcile
        logger.warning("could not queue %s webhook deliveries now (%s); the reconciler will", len(rows), error)
        return 0
    return len(rows)


def _enqueue(queue, delivery_id: int, due_at: datetime, attempts: int, pipe) -> None:
    options = {"job_id": job_id(delivery_id, attempts), "job_timeout": DELIVER_TIMEOUT, "result_ttl": 600,
               "failure_ttl": 7 * 86400, "pipeline": pipe}
    if due_at <= datetime.now(UTC):
        queue.enqueue(DELIVER_JOB, delivery_id, **options)
    else:
        queue.enqueue_at(due_at.astimezone(UTC), DELIVER_JOB, delivery_id, **options)


# ---------------------------------------------------------------------------------------------------- the objects


def _iso(moment) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(moment, datetime) \
        else moment.isoformat()


def email_object(row: OutboundEmail) -> dict:
    """An email as events show it: where it goes, when, and what became of it (never its rendered text)."""
    return {"object": "email", "id": row.id, "kind": row.kind, "variant": row.variant, "status": row.status,
            "to": row.to_address, "customer_id": row.customer_id, "rep_id": row.rep_id, "outcome_id": row.outcome_id,
            "message_id": row.message_id, "due_at": _iso(row.due_at), "sent_at": _iso(row.sent_at),
            "attempts": row.attempts, "failure": row.failure, "error": row.last_error if row.status == "failed"
            else None, "canceled_reason": row.canceled_reason}


def outcome_object(outcome: Outcome | dict, customers: list[dict]) -> dict:
    """An outcome with its customers; the rep's note and the evidence stay inside Keepwarm."""
    get = outcome.get if isinstance(outcome, dict) else lambda name: getattr(outcome, name)
    return {"object": "outcome", "id": get("id"), "rep_id": get("rep_id"), "outcome": get("outcome"),
            "cause": get("cause"), "reasons": list(get("reasons") or []), "recontact_on": _iso(get("recontact_on")),
            "decision_makers": list(get("decision_makers") or []), "meeting_at": _iso(get("meeting_at")),
            "held_reason": get("held_reason"), "superseded_by": get("superseded_by"),
            "debrief_submitted_at": _iso(get("debrief_submitted_at")), "customers": customers}


def outcome_customers(session: Session, outcome_ids: list[int]) -> dict[int, list[dict]]:
    """The customers of these outcomes, for their events (one query)."""
    found: dict[int, list[dict]] = {i: [] for i in outcome_ids}
    rows = session.execute(sa.select(OutcomeCustomer.outcome_id, Customer.id, Customer.email, Customer.name)
                           .join(Customer, Customer.id == OutcomeCustomer.customer_id)
                           .where(OutcomeCustomer.outcome_id.in_(outcome_ids)).order_by(Customer.id))
    for outcome_id, customer_id, email, name in rows:
        found[outcome_id].append({"id": customer_id, "email": email, "name": name})
    return found


def debrief_object(debrief: Debrief) -> dict:
    return {"object": "debrief", "id": debrief.id, "outcome_id": debrief.outcome_id, "rep_id": debrief.rep_id,
            "plan": debrief.plan, "recontact_on": _iso(debrief.recontact_on), "answers": debrief.answers,
            "submitted_at": _iso(debrief.submitted_at), "updated_at": _iso(debrief.updated_at)}


# ---------------------------------------------------------------------------------------------------- the emitters


def emit_emails(session: Session, event: str, ids: Iterable[int], *, occurrence: str = "",
                where: tuple = (), now: datetime | None = None) -> int:
    """`event` for these emails, read back in the transaction (only rows matching `where`, e.g. the status just
    set). The occurrence key is the email id plus `occurrence` (empty: once per email, e.g. `email.sent`)."""
    ids = sorted(set(ids))
    if not ids:
        return 0

    def occurrences():
        session.flush()  # populate_existing below would overwrite changes not flushed yet
        rows = session.execute(sa.select(OutboundEmail).where(OutboundEmail.id.in_(ids), *where)
                               .execution_options(populate_existing=True)).scalars()
        return [(f"{row.id}{occurrence}", email_object(row)) for row in rows]

    return emit(session, event, occurrences, now=now)


def emit_scheduled(session: Session, due: Iterable[tuple[int, datetime]], *, now: datetime | None = None) -> int:
    """`email.scheduled` for emails now scheduled at these due times: one event per (email, due time), so the
    same schedule reported twice (created, then released unchanged) is one event."""
    due = list(due)
    if not due:
        return 0
    keys = {outbound_id: f"{outbound_id}@{_iso(due_at)}" for outbound_id, due_at in due}

    def occurrences():
        session.flush()
        rows = session.execute(sa.select(OutboundEmail).where(OutboundEmail.id.in_(list(keys)))
                               .execution_options(populate_existing=True)).scalars()
        return [(keys[row.id], email_object(row)) for row in rows]

    return emit(session, "email.scheduled", occurrences, now=now)


def emit_outcomes(session: Session, event: str, keyed: dict[int, str], *, now: datetime | None = None) -> int:
    """`event` for these outcomes ({outcome id: occurrence key}), read back in the transaction."""
    if not keyed:
        return 0

    def occurrences():
        session.flush()
        rows = session.execute(sa.select(Outcome).where(Outcome.id.in_(list(keyed)))
                               .execution_options(populate_existing=True)).scalars().all()
        customers = outcome_customers(session, [r.id for r in rows])
        return [(keyed[r.id], outcome_object(r, customers[r.id])) for r in rows]

    return emit(session, event, occurrences, now=now)


def emit_unsubscribed(session: Session, email: str, reason: str, *, now: datetime | None = None) -> int:
    """`customer.unsubscribed`: this address was put on the suppression list (an opt-out, a complaint, a forgotten
    customer): nothing will be written to it again, and the receiver should stop too."""
    now = now or datetime.now(UTC)

    def occurrences():
        customer_id = session.execute(sa.select(Customer.id).where(Customer.email == email)).scalar()
        return [(f"{email}@{_iso(now)}", {"object": "customer", "id": customer_id, "email": email,
                                          "reason": reason, "suppressed_at": _iso(now)})]

    return emit(session, "customer.unsubscribed", occurrences, now=now)
