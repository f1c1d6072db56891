"""Putting sends on RQ, the leases of rows being sent, and the reconciler that rebuilds whatever Redis lost from
the database."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlmodel import select

from service.context import Services
from service.db import session_scope
from service.models import OutboundEmail
from service.outbox import status

logger = logging.getLogger(__name__)

SEND_JOB = "jobs.outbox.send_email"
# A job runs this long before its row is due: the rows are claimed and composed ahead, then sent on the second
# (2,000 emails due together take ~2 s to compose on one core).
LEAD = timedelta(seconds=4)
SEND_TIMEOUT = 120
# 4xx answers are retried after these many seconds (the row is scheduled again, in the database, not by RQ's
# Retry: a drained row has no job of its own to retry); after the last one the row is marked failed.
RETRY_INTERVALS = [30, 120, 600, 1800, 3600]
# A row in `sending` whose lease (updated_at, renewed every LEASE_EVERY seconds by its worker) is older than this
# was abandoned by a dead worker: it is sent again, same Message-ID.
STALE_SENDING = timedelta(seconds=45)
MAX_ABANDONED = 6
# A worker that announces itself (sender.announce: its name on a Redis connection of its own, and in HOLDERS_KEY)
# and whose name is gone from Redis's clients is dead: its rows are revived once their lease is this old, not
# STALE_SENDING. Two and a half lease renewals (LEASE_EVERY, 10 s), so a live worker cut off from Redis alone,
# which still renews its leases in the database, is not taken for dead even when a renewal runs late or the
# hosts' clocks differ by a few seconds; and the name must be missing on two looks DEAD_CONFIRM apart (a
# reconnecting presence connection, a Redis failover).
DEAD_HOLDER_AFTER = timedelta(seconds=25)
DEAD_CONFIRM = timedelta(seconds=3)
_missing_since: dict[str, datetime] = {}
# Nobody is taken for dead by a Redis up for less than this: its clients (the live workers' names) are all new.
REDIS_SETTLE = timedelta(seconds=15)
HOLDERS_KEY = "keepwarm:holders"
PRESENCE_PREFIX = "keepwarm-holder:"
ENQUEUE_CHUNK = 500  # jobs queued per Redis round trip by enqueue_sends
_LIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}


def holder(services: Services) -> str:
    """This worker's name on the rows it claims (settings.worker_id, else host name and process id)."""
    return services.worker_name()


def job_id(outbound_id: int) -> str:
    return f"send-{outbound_id}"


def enqueue_send(services: Services, outbound_id: int, due_at: datetime, *, pipeline=None) -> Job:
    """Queue the send to start LEAD before due_at (aware UTC only); due soon or past goes straight on the queue.

    The job composes ahead and waits for due_at itself: it never sends early. With `pipeline`, the commands
    wait there for its execute (see enqueue_sends).
    """
    if due_at.tzinfo is None:
        raise ValueError("naive datetime: RQ would read it as the server's local time")
    queue = services.queue("outbox")
    options = {"job_id": job_id(outbound_id), "job_timeout": SEND_TIMEOUT, "result_ttl": 600,
               "failure_ttl": 30 * 86400, "pipeline": pipeline}
    start = due_at - LEAD
    if start <= datetime.now(UTC):
        return queue.enqueue(SEND_JOB, outbound_id, **options)
    return queue.enqueue_at(start.astimezone(UTC), SEND_JOB, outbound_id, **options)


def enqueue_wake(services: Services, outbound_id: int, at: datetime) -> None:
    """A send job under its own id (`wake-<second>`) that drains whatever is due at `at`: for the relay's limit,
    which holds due rows back after their own jobs ran. Its own id, so it never replaces (or is finished by) a
    running row's job; one per second at most."""
    job = f"wake-{int(at.timestamp())}"
    try:
        services.queue("outbox").enqueue_at(at.astimezone(UTC), SEND_JOB, outbound_id, job_id=job,
                                            job_timeout=SEND_TIMEOUT, result_ttl=60, failure_ttl=86400)
    except Exception as error:  # Redis away: the reconciler queues the due rows within a minute
        logger.warning("could not queue a wake-up for the relay's limit (%s); the reconciler will", error)


def enqueue_sends(services: Services, sends: Iterable[tuple[int, datetime]]) -> None:
    """enqueue_send for many rows: one Redis round trip per ENQUEUE_CHUNK jobs instead of several per job
    (measured 0.78 → 0.30 ms a job). A chunk is one MULTI/EXEC: queued whole, or not at all."""
    sends = list(sends)
    for start in range(0, len(sends), ENQUEUE_CHUNK):
        with services.redis.pipeline() as pipe:
            # MULTI first: RQ 3 puts a pipeline it is given into MULTI only when it enqueues for now, and refuses to
            # once commands are queued, so an enqueue after an enqueue_at in one chunk failed the whole chunk.
            pipe.multi()
            for outbound_id, due_at in sends[start:start + ENQUEUE_CHUNK]:
                enqueue_send(services, outbound_id, due_at, pipeline=pipe)
            pipe.execute()


def enqueue_or_defer(services: Services, sends: Iterable[tuple[int, datetime]]) -> None:
    """enqueue_sends for rows already committed; if Redis is away, nothing is lost: the reconciler queues them
    from the database within a minute. Every "queue it now if you can" goes through here."""
    sends = list(sends)
    if not sends:
        return
    try:
        enqueue_sends(services, sends)
    except Exception as error:  # the rows are committed: only delayed until the next reconcile
        logger.warning("could not queue %s emails now (%s); the reconciler will", len(sends), error)


def forget_jobs(services: Services, outbound_ids: list[int], *, keep: str | None = None) -> None:
    """Take the jobs of rows already handled off Redis (queue, schedule), so they do not run for nothing.

    Best effort: a job left behind finds its row no longer scheduled and only drains what else is due.
    The job hashes are left to expire, since another worker may be running one right now.
    """
    queue = services.queue("outbox")
    scheduled = ScheduledJobRegistry(queue=queue)
    try:
        with services.redis.pipeline(transaction=False) as pipe:
            for outbound_id in outbound_ids:
                name = job_id(outbound_id)
                if name != keep:
                    queue.remove(name, pipeline=pipe)
                    scheduled.remove(name, pipeline=pipe)
                    pipe.expire(Job.key_for(name), 600)
            pipe.execute()
    except Exception:  # Redis away: the leftover jobs are harmless
        logger.warning("could not take %s handled jobs off Redis", len(outbound_ids), exc_info=True)


def reconcile(services: Services, *, now: datetime | None = None) -> int:
    """Re-enqueue every scheduled row whose job is missing from Redis; revive abandoned `sending` rows."""
    revived = revive_abandoned(services, now=now)
    with session_scope(services.engine) as session:
        rows = list(session.exec(select(OutboundEmail.id, OutboundEmail.due_at)
                                 .where(OutboundEmail.status == "scheduled")))
    # A revived row's job may still look `started` (its worker died holding it): revive_abandoned queued it.
    missing = [r for r in _missing(services, rows) if r[0] not in revived]
    enqueue_sends(services, missing)
    if missing:
        logger.info("reconcile: %s re-enqueued", len(missing))
    return len(missing) + len(revived)


def _missing(services: Services, rows: list) -> list:
    missing = []
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        jobs = Job.fetch_many([job_id(r[0]) for r in chunk], connection=services.redis)
        missing += [row for row, job in zip(chunk, jobs, strict=True) if job is None or _dead(job)]
    return missing


def _dead(job: Job) -> bool:
    try:
        return job.get_status(refresh=False) not in _LIVE
    except Exception:  # a job hash half gone (evicted, flushed mid-read) counts as missing
        return True


def revive_abandoned(services: Services, *, now: datetime | None = None) -> set[int]:
    """Rows a dead worker left in `sending` (lease not renewed for STALE_SENDING) are queued to be sent again;
    returns their ids."""
    now = now or datetime.now(UTC)
    why = "abandoned mid-send by a dead worker"
    return _requeue(services, _revive(services, now, OutboundEmail.updated_at < now - STALE_SENDING, why), why)


def revive_own(services: Services) -> set[int]:
    """At a worker's start: rows still held under its name were left by its previous life (killed, crashed),
    since no two running workers share a name. They are queued again at once, not after the lease lapses."""
    name = holder(services)
    why = f"left mid-send by this worker's previous run ({name})"
    return _requeue(services, _revive(services, datetime.now(UTC), OutboundEmail.held_by == name, why), why)


def presence_name(name: str) -> str:
    """The Redis client name that says the worker `name` is alive (CLIENT SETNAME takes no spaces)."""
    return PRESENCE_PREFIX + re.sub(r"[^!-~]", "_", name)


def revive_dead_holders(services: Services, *, now: datetime | None = None) -> set[int]:
    """Rows held by workers known dead (announced, now gone from Redis's clients) are queued again once their
    lease is DEAD_HOLDER_AFTER old; returns their ids. Nothing while Redis itself has just started (every
    worker's connection is new then), or where Redis refuses CLIENT LIST: the lease covers those."""
    now = now or datetime.now(UTC)
    try:
        if services.redis.info("server").get("uptime_in_seconds", 0) < REDIS_SETTLE.total_seconds():
            return set()
        alive = {client.get("name") for client in services.redis.client_list()}
        known = {name.decode() for name in services.redis.smembers(HOLDERS_KEY)}
    except Exception:  # Redis away or CLIENT refused by its ACL: STALE_SENDING does it
        return set()
    ours = holder(services)
    missing = {name for name in known if name != ours and presence_name(name) not in alive}
    for name in list(_missing_since):
        if name not in missing:
            del _missing_since[name]  # back (or forgotten): the next absence starts a new count
    for name in missing:
        _missing_since.setdefault(name, now)
    dead = sorted(name for name in missing if now - _missing_since[name] >= DEAD_CONFIRM)
    if not dead:
        return set()
    why = f"left mid-send by a worker known dead ({', '.join(dead)[:200]}: gone from Redis)"
    revived = _requeue(services, _revive(services, now, sa.and_(
        OutboundEmail.held_by.in_(dead), OutboundEmail.updated_at < now - DEAD_HOLDER_AFTER), why), why)
    with session_scope(services.engine) as session:  # the dead holding nothing more are forgotten
        holding = set(session.exec(select(OutboundEmail.held_by).where(OutboundEmail.status == "sending",
                                                                       OutboundEmail.held_by.in_(dead))))
    if gone := [name for name in dead if name not in holding]:
        services.redis.srem(HOLDERS_KEY, *gone)
    return revived


def _requeue(services: Services, revived: list[tuple[int, datetime]], why: str) -> set[int]:
    """Queue revived rows (committed as scheduled already: if Redis is away, the reconciler queues them)."""
    if revived:
        logger.warning("%s emails %s are queued again (same Message-IDs)", len(revived), why)
    enqueue_or_defer(services, revived)
    return {outbound_id for outbound_id, _due in revived}


def _revive(services: Services, now: datetime, whose, why: str) -> list[tuple[int, datetime]]:
    """Rows stuck in `sending` whose worker is gone (`whose`: a stale lease, or the holder's own name) go back to
    `scheduled` to be sent again.

    Workers renew the lease (updated_at) of what they hold every few seconds, so a stale row has no live owner.
    Each row is revived by one UPDATE … RETURNING, so two workers doing this at once never both queue it.
    A row abandoned MAX_ABANDONED times is a crash that repeats, not bad luck: it is failed instead.
    """
    with session_scope(services.engine) as session:
        return status.revive_abandoned(session, whose, why, max_abandoned=MAX_ABANDONED, now=now)
