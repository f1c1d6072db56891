"""Delivering one webhook: claim the row, post it signed, record the answer; retries, leases and the reconciler.

    pending ──claim──▶ sending ──2xx──▶ delivered   (never posted again by the machinery)
       ▲                 │ ├──timeout, no connection, 408/425/429, 5xx──▶ pending, later (for a day)
       └──lease lapsed───┘ └──3xx, other 4xx, refused address, a day of failures──▶ failed

Every change is a conditional UPDATE naming the status it moves from (and, when recording, the try it claimed), so
two workers never both post one try, and a worker whose lease lapsed records nothing over the next one's.
A delivery is only at-least-once in one case: a worker killed after the receiver answered 2xx and before the
answer was recorded; its row is posted again, with the same event id, once its lease lapses (or at once when the
worker starts again under the same name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from rq.job import Job, JobStatus

from service import events
from service.context import Services
from service.db import session_scope
from service.models import WebhookDelivery, WebhookEndpoint
from service.webhooks.addresses import RefusedAddress, Unresolved, resolve
from service.webhooks.receiver import Answer, post
from service.webhooks.signing import HEADER, endpoint_secret, fingerprint, signature

logger = logging.getLogger(__name__)

# Seconds before each retry after a try that may work later (a timeout, a 5xx); the last is repeated until the
# delivery is a day old, then it is failed.
RETRY_DELAYS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 21600)
RETRY_FOR = timedelta(days=1)
RETRYABLE_CODES = {408, 425, 429}
EARLY = timedelta(seconds=2)  # RQ may start a scheduled job up to a second before its time
LEASE_MARGIN = timedelta(seconds=60)  # a `sending` row older than the HTTP timeout plus this was abandoned
_LIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}
_ID, _STATUS = WebhookDelivery.id, WebhookDelivery.status


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds for one try, with what posting it needs."""

    id: int
    attempts: int
    event: str
    event_id: str
    body: str
    created_at: datetime
    endpoint_id: int
    url: str
    salt: str
    fingerprint: str


class _Refused(Exception):
    """Posting this delivery cannot work as things stand (an address refused, the app key changed)."""


def deliver(services: Services, delivery_id: int, *, now: datetime | None = None) -> str:
    """One try of one delivery, if it is pending and due; what became of it."""
    now = now or datetime.now(UTC)
    claimed = _claim(services, delivery_id, now)
    if claimed is None:
        return "not pending"
    try:
        answer = _post(services, claimed, now)
    except _Refused as refused:
        answer = Answer(None, "", str(refused), 0)
        return _record(services, claimed, answer, now, retry=False)
    return _record(services, claimed, answer, now, retry=_retryable(answer))


def _claim(services: Services, delivery_id: int, now: datetime) -> Claimed | None:
    """pending → sending, if due and its endpoint is active (one conditional UPDATE); None when not ours."""
    active = sa.select(WebhookEndpoint.id).where(WebhookEndpoint.active)
    with session_scope(services.engine) as session:
        row = session.execute(
            sa.update(WebhookDelivery)
            .where(_ID == delivery_id, _STATUS == "pending", WebhookDelivery.due_at <= now + EARLY,
                   WebhookDelivery.endpoint_id.in_(active))
            .values(status="sending", attempts=WebhookDelivery.attempts + 1, held_by=services.worker_name(),
                    updated_at=now)
            .returning(WebhookDelivery.attempts, WebhookDelivery.event, WebhookDelivery.event_id,
                       WebhookDelivery.body, WebhookDelivery.created_at, WebhookDelivery.endpoint_id)).first()
        if row is None:
            return None
        endpoint = session.get(WebhookEndpoint, row.endpoint_id)
        return Claimed(delivery_id, row.attempts, row.event, row.event_id, row.body, row.created_at,
                       endpoint.id, endpoint.url, endpoint.salt, endpoint.fingerprint)


def _post(services: Services, claimed: Claimed, now: datetime) -> Answer:
    settings = services.settings
    secret = endpoint_secret(settings, claimed.salt)
    if fingerprint(secret) != claimed.fingerprint:
        raise _Refused("KEEPWARM_SECRET_KEY changed since this endpoint's secret was made: roll the secret on "
                       "/admin/webhooks and give the new one to the receiver, then redeliver")
    try:
        target = resolve(claimed.url, allow_private=settings.webhook_allow_private)
    except Unresolved as unresolved:  # like a receiver down: retried with backoff for the event's day
        return Answer(None, "", str(unresolved), 0)
    except RefusedAddress as refused:
        raise _Refused(f"address refused: {refused}") from None
    headers = {"Content-Type": "application/json", HEADER: signature(secret, int(now.timestamp()), claimed.body),
               "Keepwarm-Event": claimed.event, "Keepwarm-Event-Id": claimed.event_id,
               "Keepwarm-Delivery": str(claimed.id)}
    return post(target, claimed.body.encode(), headers, timeout=settings.webhook_timeout)


def _retryable(answer: Answer) -> bool:
    return answer.code is None or answer.code >= 500 or answer.code in RETRYABLE_CODES


def _verdict(claimed: Claimed, answer: Answer, now: datetime, retry: bool) -> tuple[str, datetime | None, str | None]:
    """The new status, when to try again (pending only), and the note for the log."""
    if answer.code is not None and 200 <= answer.code < 300:
        return "delivered", None, None
    error = answer.error or f"answered {answer.code}"
    if answer.code is not None and 300 <= answer.code < 400:
        return "failed", None, f"answered {answer.code}: redirects are not followed"
    if not retry:
        return "failed", None, error
    due = now + timedelta(seconds=RETRY_DELAYS[min(claimed.attempts, len(RETRY_DELAYS)) - 1])
    if due > claimed.created_at + RETRY_FOR:
        return "failed", None, f"still failing a day after the event: {error}"
    return "pending", due, error


def _record(services: Services, claimed: Claimed, answer: Answer, now: datetime, *, retry: bool) -> str:
    """sending → delivered / pending (later) / failed, only if this try still holds the row."""
    status, due, error = _verdict(claimed, answer, now, retry)
    values = {"status": status, "held_by": None, "updated_at": now, "response_code": answer.code,
              "response_excerpt": answer.excerpt or None, "last_error": error[:1000] if error else None,
              "duration_ms": answer.duration_ms}
    if status == "delivered":
        values["delivered_at"] = now
    if due is not None:
        values["due_at"] = due
    with session_scope(services.engine) as session:
        mine = session.execute(sa.update(WebhookDelivery).where(
            _ID == claimed.id, _STATUS == "sending", WebhookDelivery.attempts == claimed.attempts)
            .values(**values)).rowcount == 1
    if not mine:
        logger.warning("webhook delivery %s: try %s outlived its lease; its answer (%s) is not recorded",
                       claimed.id, claimed.attempts, answer.code)
        return "lease lost"
    _log(claimed, status, answer, error)
    if due is not None:
        events.enqueue_deliveries(services, [(claimed.id, due, claimed.attempts)])
    return status


def _log(claimed: Claimed, status: str, answer: Answer, error: str | None) -> None:
    text = "webhook delivery %s (%s %s, endpoint %s, try %s): %s, %s in %s ms"
    args = (claimed.id, claimed.event, claimed.event_id, claimed.endpoint_id, claimed.attempts, status,
            answer.code if answer.code is not None else error, answer.duration_ms)
    (logger.info if status == "delivered" else logger.warning)(text, *args)


# ---------------------------------------------------------------------------------------------------- reconciling


def reconcile(services: Services, *, now: datetime | None = None) -> int:
    """Give back deliveries whose worker died mid-try, and queue every pending one whose job Redis lost."""
    now = now or datetime.now(UTC)
    stale = now - timedelta(seconds=services.settings.webhook_timeout) - LEASE_MARGIN
    revived = _revive(services, WebhookDelivery.updated_at < stale, now)
    with session_scope(services.engine) as session:
        rows = session.execute(sa.select(_ID, WebhookDelivery.due_at, WebhookDelivery.attempts).where(
            _STATUS == "pending", WebhookDelivery.endpoint_id.in_(
                sa.select(WebhookEndpoint.id).where(WebhookEndpoint.active)))).all()
    missing = [(r[0], r[1], r[2]) for r in _missing(services, rows)]
    events.enqueue_deliveries(services, missing)
    if missing or revived:
        logger.info("webhooks reconcile: %s queued again, %s abandoned tries given back", len(missing), revived)
    return len(missing)


def revive_own(services: Services) -> int:
    """At a worker's start: the tries its previous life left in `sending` go back to pending at once."""
    return _revive(services, WebhookDelivery.held_by == services.worker_name(), datetime.now(UTC))


def _revive(services: Services, whose, now: datetime) -> int:
    """sending → pending (it was due when claimed: it goes on the queue at once) for rows whose worker is gone."""
    with session_scope(services.engine) as session:
        revived = session.execute(sa.update(WebhookDelivery).where(_STATUS == "sending", whose).values(
            status="pending", held_by=None, updated_at=now,
            last_error="given back: its worker stopped mid-try").returning(_ID, WebhookDelivery.due_at,
                                                                           WebhookDelivery.attempts)).all()
    if revived:
        logger.warning("webhook deliveries %s were left mid-try: posting them again (same event ids)",
                       ", ".join(str(r[0]) for r in revived[:20]))
        events.enqueue_deliveries(services, [(r[0], r[1], r[2]) for r in revived])
    return len(revived)


def _missing(services: Services, rows: list) -> list:
    missing = []
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        jobs = Job.fetch_many([events.job_id(r[0], r[2]) for r in chunk], connection=services.redis)
        missing += [row for row, job in zip(chunk, jobs, strict=True) if job is None or _dead(job)]
    return missing


def _dead(job: Job) -> bool:
    try:
        return job.get_status(refresh=False) not in _LIVE
    except Exception:  # a job hash half gone (flushed mid-read) counts as missing
        return True
