"""Sending: due rows are claimed in batches, composed ahead, sent over reused SMTP connections, and recorded.

The state machine per row: scheduled → sending (claimed by one conditional UPDATE, so exactly one worker holds it)
→ sent | failed | canceled, or back to scheduled for a later try after a 4xx.

Every row keeps its own RQ job (`send-<id>`, started LEAD seconds before it is due). Whichever job runs first
drains every row that is due: it claims them CLAIM_BATCH at a time, composes them before they are due, sends each
when its moment comes (never early) and records them a few at a time. The jobs of the rows it handled are taken
off Redis so they do not run for nothing. One job per email capped a worker at ~30 emails a second (RQ's own
bookkeeping is ~7 ms a job); draining sends at the speed of the SMTP connection.

A crash leaves the rows it held in `sending`; the reconciler revives them after STALE_SENDING and they are sent
again with the same Message-ID, which receivers dedupe. At most RECORD_EVERY sent-but-unrecorded emails (plus
the one in flight) can go out twice that way.

A worker asked to stop (SIGTERM: stop_sending) does not wait for its drain to run its course: the drain claims
nothing more, lets what is on the wire finish and records it, and gives back every row it held unsent, with a job
for now so another worker takes them at once; a job still waiting for its rows' moment gives its row back too.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from sqlmodel import Session, select

from service.context import Services
from service.db import session_scope
from service.models import Customer, OutboundEmail, Outcome, Rep, Suppression
from service.outbox import schedule, status
from service.outbox.compose import Envelope, Outgoing, address, compose, thread_of, thread_subject
from service.outbox.pace import Pace
from service.outbox.rows import new_outbound
from service.outbox.schedule import enqueue_or_defer, forget_jobs, holder
from service.outbox.template_context import template_context
from service.outbox.templates import BoundedRenderer, RenderError, render_email
from service.outbox.transport import PermanentSendError, SmtpTransport, ThrottledError, TransientSendError

logger = logging.getLogger(__name__)

# A job that starts earlier than LEAD + this (the row was postponed after it was queued) leaves it to the new job.
EARLY_WAIT_LIMIT = timedelta(seconds=15)
CLAIM_BATCH = 50  # rows claimed by one UPDATE
AHEAD = 40  # batches a worker claims and composes ahead of the senders (emails due together, composed early)
# Emails already due (a backlog) that one worker holds unsent at most: more would only wait in this worker's
# queue while another worker, started or idle, has nothing to claim.
BACKLOG_AHEAD = 3 * CLAIM_BATCH
RECORD_EVERY = 10  # sent rows recorded per transaction: what a crash can make go out twice
SETTLE_EVERY = 0.2  # seconds: while the first batch waits for its moment, sends done in later ones are recorded
OPT_OUT_REFRESH = 0.1  # seconds: how stale the senders' copy of new opt-outs may be when an email leaves
DRAIN_SECONDS = 60  # one job drains at most this long, well inside its RQ timeout; other jobs go on after
# A sender thread waits this long at most for the relay's limit to give it a turn; a longer wait goes back to the
# database, due when the turn comes (so a worker never holds a long backlog in `sending`).
TURN_WAIT = 5.0
_local = threading.local()
_pools: dict[int, Senders] = {}
# The rows this process has claimed and not yet settled: the worker's lease thread keeps them fresh
# (renew_leases), so a row whose lease goes stale was left by a dead worker and can be sent again.
_held: set[int] = set()
_held_lock = threading.Lock()
# Set once this process is asked to stop (stop_sending): every drain running, and every one that would start,
# winds down at once. The drains' own stop events are kept here so the signal handler can wake their waits.
_stopping = threading.Event()
_drain_stops: set[threading.Event] = set()
_presence: redis.Redis | None = None  # this worker's named connection (announce)
# Every email is rendered in this child process, under the preview's time and memory bounds: a template that is
# slow for one customer fails that email, not the worker (a fork per email, as the preview does, was too slow).
_renderer = BoundedRenderer()


def transport_for(services: Services) -> SmtpTransport:
    """One SMTP connection per sender thread, reused across sends."""
    transports = _local.__dict__.setdefault("transports", {})
    key = services.settings.smtp_url or ""
    if key not in transports:
        transports[key] = SmtpTransport(services.settings.smtp(), settings=services.settings)
    return transports[key]


class Senders:
    """The worker's sender threads, alive as long as the process, each keeping its own SMTP connection. They take
    the emails handed to them by their moment (their due time, or the moment they were handed over when already
    due; the rep's before the customers' among those handed over together), each thread waiting for the first
    moment to come.

    A pool that ran emails in the order they were handed over (a ThreadPoolExecutor, before) kept each thread
    waiting for the moment of an email composed ahead while an email already due, claimed after it (revived from
    a killed worker, given back, sent now), waited behind: ~3 s late after every kill in the soak.
    """

    POLL = 0.05  # seconds: how often a thread waiting for a moment looks whether its drain was stopped

    def __init__(self, size: int):
        self._heap: list = []
        self._ready = threading.Condition()
        self._order = itertools.count()
        for n in range(size):
            threading.Thread(target=self._serve, name=f"smtp_{n}", daemon=True).start()

    def submit(self, moment: datetime, first: bool, stop: threading.Event, fn, *args) -> Future:
        """fn(*args) in a sender thread once `moment` comes (or its drain stops); `first` goes before the others
        of the same moment."""
        future: Future = Future()
        with self._ready:
            heapq.heappush(self._heap, (moment, not first, next(self._order), stop, future, fn, args))
            self._ready.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._heap:
                    self._ready.wait()
                moment, _later, _n, stop, future, fn, args = self._heap[0]
                wait = (moment - datetime.now(UTC)).total_seconds()
                if wait > 0 and not stop.is_set() and not future.cancelled():
                    self._ready.wait(min(wait, self.POLL))  # or an earlier email handed over meanwhile
                    continue
                heapq.heappop(self._heap)
            if future.set_running_or_notify_cancel():  # else called back by its interrupted drain
                try:
                    future.set_result(fn(*args))
                except BaseException as error:  # noqa: BLE001 (the drain's _settle raises it where it waits)
                    future.set_exception(error)


def _senders(size: int) -> Senders:
    if size not in _pools:
        _pools[size] = Senders(size)
    return _pools[size]


def stop_sending() -> None:
    """This process is stopping (the worker's SIGTERM): every drain stops claiming, and gives back what it holds
    unsent for another worker to send at once. Safe in a signal handler: it only sets events."""
    _stopping.set()
    for stop in list(_drain_stops):
        stop.set()


def announce(services: Services) -> None:
    """Keep this worker's name (the `held_by` of the rows it claims) on a Redis connection of its own, so other
    workers can tell it is alive: a process that dies, killed -9 included, has its connections closed by the
    kernel, and its name is gone from Redis's client list at once (schedule.revive_dead_holders). Called every
    second by the worker: after a Redis restart the connection, and the name, come back within a second."""
    global _presence
    name = holder(services)
    if _presence is None:
        pool = services.redis.connection_pool
        _presence = redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, max_connections=1,
            **{**pool.connection_kwargs, "client_name": schedule.presence_name(name)}))
    _presence.sadd(schedule.HOLDERS_KEY, name)  # announced: its absence from Redis's clients later means death


def send_outbound(services: Services, outbound_id: int, *, job_id: str | None = None) -> str:
    """The job of one row: wait until LEAD before it is due, then send it and every other due row."""
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        due_at = row.due_at if row else None
    if due_at is not None:
        wait = (due_at - schedule.LEAD - datetime.now(UTC)).total_seconds()
        if wait > EARLY_WAIT_LIMIT.total_seconds():
            return "not due"  # postponed after it was queued: the job for the new time is already scheduled
        if wait > 0 and _stopping.wait(wait):
            # This job ends with the worker: its row gets a job elsewhere, at the moment this one would have woken.
            _wake(services, outbound_id, due_at - schedule.LEAD)
            return "stopping: handed back"
    if _stopping.is_set():
        _wake(services, outbound_id, datetime.now(UTC))
        return "stopping: handed back"
    tally = drain(services, skip_job=job_id)
    return ", ".join(f"{n} {state}" for state, n in sorted(tally.items())) or "nothing due"


def drain(services: Services, *, skip_job: str | None = None, seconds: float = DRAIN_SECONDS) -> Counter:
    """Send every row due within LEAD, batch after batch, for at most `seconds`; returns how each row ended.

    Batches go to `smtp_connections` sender threads, each email waiting there for its moment, while this thread
    claims and composes the next batches (up to AHEAD of them): composing is CPU, sending is mostly waiting for
    the SMTP server, so the two overlap, and emails due together are composed before they are due. Of a backlog
    (emails already due) it holds no more than BACKLOG_AHEAD unsent, so other workers share it.
    """
    tally: Counter = Counter()
    deadline = time.monotonic() + seconds
    senders = _senders(services.settings.smtp_connections)
    window: deque[tuple[Batch, list]] = deque()  # batches handed to the senders, oldest first
    opt_outs, stop, pace = OptOuts(services), threading.Event(), Pace.of(services)
    _drain_stops.add(stop)  # before looking at _stopping: stop_sending sets it first, then these events
    if _stopping.is_set():
        stop.set()
    more, released = True, []  # released: rows given back unsent (a stop, an interruption)
    try:
        while (window or more) and not stop.is_set():
            if more and len(window) < AHEAD and not (window and _done(window[0][1])) and _room(window):
                batch = _next_batch(services, pace) if time.monotonic() < deadline else Batch()
                if batch.claimed:
                    window.append((batch, _start(services, batch, senders, opt_outs, stop, pace)))
                else:
                    more = False
                continue
            batch, in_flight = window[0]
            if not _done(in_flight):
                # Emails go by their moment, not in the order handed over (Senders): while the first batch waits
                # for its moment, what is done in any batch is recorded, sends RECORD_EVERY at a time.
                wait_for([future for _item, future in in_flight], timeout=SETTLE_EVERY)
                for other, others in window:
                    _settle(services, other, others, waiting=False)
                continue
            _settle(services, batch, in_flight)
            window.popleft()
            tally.update(batch.outcomes)
            released += batch.released
            _after(services, batch, skip_job)
    finally:
        # Interrupted (a stop, a job timeout, a database error): emails still waiting for their moment, or for
        # their turn in this worker's backlog, are called back and released to scheduled, what was sent is
        # recorded, and what was on the wire finishes first. A job for now takes the released rows (and their
        # jobs already run) to whichever worker is free, instead of leaving them to the reconciler's minute.
        stop.set()
        _drain_stops.discard(stop)
        for batch, in_flight in window:
            for _item, future in in_flight:
                future.cancel()
            try:
                _settle(services, batch, in_flight)
            except Exception:  # the database is away: what cannot be recorded is let go, never held forever
                # (its lease lapses and revival sends it; one that went out already goes again, same Message-ID)
                logger.exception("drain: %s emails could not be recorded; their lease will lapse", len(in_flight))
                _let_go([item.id for item, _future in in_flight])
                continue
            released += batch.released
            tally.update(batch.outcomes)
            enqueue_or_defer(services, batch.follow_ups)
        if released:
            logger.info("drain interrupted: %s emails given back unsent", len(released))
            _wake(services, released[0], datetime.now(UTC))
    return tally


def _done(in_flight: list[tuple[Ready, Future]]) -> bool:
    return all(future.done() for _item, future in in_flight)


def _room(window: deque) -> bool:
    """Fewer than BACKLOG_AHEAD emails held here are already due and unsent (rows are claimed in due order)."""
    now, waiting = datetime.now(UTC), 0
    for _batch, in_flight in window:
        for item, future in in_flight:
            if item.due_at > now:
                return True
            if not future.done():
                waiting += 1
                if waiting >= BACKLOG_AHEAD:
                    return False
    return True


def _next_batch(services: Services, pace: Pace) -> Batch:
    """The next rows to send: as many as the relay's limit has room for now (none while it is full or paused:
    the first waiting row's job is put at the moment the window opens again)."""
    room = pace.room()
    if room == 0:
        _wake_when_open(services, pace)
        return Batch()
    claimed = claim(services, until=datetime.now(UTC) + schedule.LEAD, limit=min(CLAIM_BATCH, room or CLAIM_BATCH))
    return prepare(services, claimed) if claimed else Batch()


def _wake_when_open(services: Services, pace: Pace) -> None:
    """The relay's window is full: a job wakes when it opens again for the first row due by then, instead of the
    waiting rows' own jobs running for nothing (and the rows waiting for the reconciler's minute)."""
    opens = datetime.now(UTC) + timedelta(seconds=max(pace.opens_in(), 0.05))
    with session_scope(services.engine) as session:
        first = session.exec(select(OutboundEmail.id).where(OutboundEmail.status == "scheduled",
                                                            OutboundEmail.due_at <= opens + schedule.LEAD)
                             .order_by(OutboundEmail.due_at, OutboundEmail.id).limit(1)).first()
    if first is not None:
        schedule.enqueue_wake(services, first, opens)


def _wake(services: Services, outbound_id: int, at: datetime) -> None:
    """A send job at `at` under its own id (never this job's, which is running): whichever worker is free drains
    what is due then. Due now, it goes straight on the queue (no wait for RQ's scheduler)."""
    if at > datetime.now(UTC):
        schedule.enqueue_wake(services, outbound_id, at)
        return
    try:
        services.queue("outbox").enqueue(schedule.SEND_JOB, outbound_id, job_id=f"handback-{outbound_id}",
                                         job_timeout=schedule.SEND_TIMEOUT, result_ttl=60, failure_ttl=86400)
    except Exception as error:  # Redis away: the rows are scheduled in the database; the reconciler queues them
        logger.warning("could not queue the rows given back (%s); the reconciler will", error)


def _after(services: Services, batch: Batch, skip_job: str | None) -> None:
    """The handled rows' jobs off Redis first, then the jobs for retries and rep notices."""
    forget_jobs(services, batch.claimed, keep=skip_job)
    enqueue_or_defer(services, batch.follow_ups)


def claim(services: Services, *, until: datetime, limit: int = CLAIM_BATCH) -> list[int]:
    """scheduled → sending for up to `limit` rows due by `until` (see status.claim); returns the ids won."""
    with session_scope(services.engine) as session:
        won = status.claim(session, holder=holder(services), until=until, limit=limit)
    _hold(won)
    return won


def renew_leases(services: Services) -> int:
    """Touch every row this process is sending, so no one takes it for abandoned; returns how many."""
    with _held_lock:
        held = sorted(_held)
    if not held:
        return 0
    with session_scope(services.engine) as session:
        status.renew(session, held)
    return len(held)


def _hold(ids: list[int]) -> None:
    with _held_lock:
        _held.update(ids)


def _let_go(ids: list[int]) -> None:
    with _held_lock:
        _held.difference_update(ids)


# ---------------------------------------------------------------------------------------------------- a batch


@dataclass
class Ready:
    """One composed email, waiting for its moment."""

    id: int
    due_at: datetime
    to_address: str
    customer_id: int | None
    message: Outgoing


@dataclass
class Batch:
    claimed: list[int] = field(default_factory=list)
    ready: list[Ready] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    follow_ups: list[tuple[int, datetime]] = field(default_factory=list)  # (id, when) to put on RQ
    released: list[int] = field(default_factory=list)  # given back unsent, to send again at once


def prepare(services: Services, ids: list[int]) -> Batch:
    """Load and compose the claimed rows; what must not go (opt-out, moot, broken) is settled here."""
    batch = Batch(claimed=list(ids))
    with session_scope(services.engine) as session:
        rows = list(session.exec(select(OutboundEmail).where(OutboundEmail.id.in_(ids))
                                 .order_by(OutboundEmail.due_at, OutboundEmail.id)))
        loaded = _preload(session, rows)  # noqa: F841  (kept alive: see _preload)
        suppressed = status.suppressed_among(session, [r.to_address for r in rows])
        templates: dict = {}
        for row in rows:
            blocked = _blocked(session, row, suppressed) or reminder_moot(session, row)
            if blocked:
                batch.outcomes["canceled"] += status.cancel_claimed(session, row.id, blocked)
                continue
            try:
                message = _compose(session, row, services, templates)
            except (RenderError, ValueError) as error:  # a template over its bounds or that never renders, junk
                logger.error("outbound %s cannot be composed: %s", row.id, error)
                batch.outcomes["failed"] += status.fail(
                    session, row.id, f"cannot compose: {error}",
                    failure="template" if isinstance(error, RenderError) else "compose")
                continue
            batch.ready.append(Ready(row.id, row.due_at, row.to_address, row.customer_id, message))
    ready = {r.id for r in batch.ready}
    _let_go([i for i in ids if i not in ready])
    return batch


def _start(services: Services, batch: Batch, senders: Senders, opt_outs: OptOuts,
           stop: threading.Event, pace: Pace) -> list[tuple[Ready, Future]]:
    """Hand the batch to the sender threads; each email waits there for its own moment."""
    dead: set[int] = set()  # customers found undeliverable in this batch
    now = datetime.now(UTC)  # the batch's emails already due go together, in the order claimed
    return [(item, senders.submit(max(item.due_at, now), item.customer_id is None, stop, _send_one, services, item,
                                  opt_outs, dead, stop, pace)) for item in batch.ready]


def _send_one(services: Services, item: Ready, opt_outs: OptOuts, dead: set[int], stop: threading.Event,
              pace: Pace) -> tuple[str, object]:
    """In a sender thread: wait until due, look at the opt-outs once more, wait for the relay's turn, send;
    returns (verdict, detail)."""
    wait = (item.due_at - datetime.now(UTC)).total_seconds()
    if stop.wait(wait) if wait > 0 else stop.is_set():
        return "released", None  # the drain was interrupted before this email's moment
    if item.customer_id is not None and opt_outs.stopped(item.to_address):
        return "canceled", "suppressed"
    if item.customer_id in dead:
        return "canceled", "undeliverable"
    turn = _await_turn(services, item, pace, stop)
    if turn is not None:
        return turn
    try:
        transport_for(services).send(item.message, item.to_address)
    except ThrottledError as error:  # the relay's own limit: everybody pauses, this email keeps its place
        return "deferred", (datetime.now(UTC) + timedelta(seconds=pace.pause()), str(error))
    except TransientSendError as error:
        return "transient", error
    except PermanentSendError as error:
        if item.customer_id is not None and error.address_refused:
            dead.add(item.customer_id)
        return "permanent", error
    return "sent", datetime.now(UTC)


def _await_turn(services: Services, item: Ready, pace: Pace, stop: threading.Event) -> tuple[str, object] | None:
    """Wait for the relay's limit (and the sending mailbox's, when sending as the rep) to give this email a turn:
    None when it has one; ("deferred", (when, why)) when the wait is longer than TURN_WAIT; ("released", None) when
    the drain is interrupted meanwhile."""
    mailbox = item.message.sender if services.settings.send_as_rep else None
    wait = pace.turn(mailbox)
    while wait > 0:
        if wait > TURN_WAIT:
            return "deferred", (datetime.now(UTC) + timedelta(seconds=wait), "waiting for the relay's limit")
        if stop.wait(wait):
            return "released", None
        wait = pace.turn(mailbox)
    return None


def _settle(services: Services, batch: Batch, in_flight: list[tuple[Ready, Future]], *,
            waiting: bool = True) -> None:
    """Record each verdict (sends RECORD_EVERY at a time, 4xx back to scheduled, 5xx failed), taking each off
    `in_flight` once recorded, so an interrupted settle can be finished later. Waiting: every email, in the order
    handed over, waiting for each; else only the ones done already, and their sends by whole RECORD_EVERY."""
    sent: list[tuple[Ready, Future]] = []
    position = 0
    try:
        while position < len(in_flight):
            item, future = in_flight[position]
            if not (waiting or future.done()):
                position += 1
                continue
            try:
                verdict, detail = ("released", None) if future.cancelled() else future.result()
            except Exception as error:  # the sender thread's own failure (a database or Redis blip before the
                # relay answered): retried like a 4xx, so the loop goes on to the emails after it
                logger.warning("outbound %s: sending failed: %s", item.id, error)
                verdict, detail = "transient", TransientSendError(f"sending failed before the relay answered: {error}")
            if verdict == "sent":
                sent.append(in_flight.pop(position))  # let go once recorded
                if len(sent) >= RECORD_EVERY:
                    _record_sent(services, sent, batch)
                    sent = []
                continue
            if verdict == "released":
                _release(services, [item.id])
                batch.released.append(item.id)
                batch.outcomes["released"] += 1
            elif verdict == "canceled":
                with session_scope(services.engine) as session:
                    batch.outcomes["canceled"] += status.cancel_claimed(session, item.id, detail)
            elif verdict == "deferred":
                _defer(services, item.id, *detail, batch)
            elif verdict == "transient":
                _transient(services, item.id, detail, batch)
            else:
                _permanent(services, item.id, detail, batch)
            in_flight.pop(position)
            _let_go([item.id])
    except BaseException:
        _record_sent(services, sent, batch)
        raise
    if waiting:
        _record_sent(services, sent, batch)
    else:
        in_flight[:0] = sent  # fewer than RECORD_EVERY: recorded with the next ones


def _record_sent(services: Services, sent: list[tuple[Ready, Future]], batch: Batch) -> None:
    if not sent:
        return
    with session_scope(services.engine) as session:
        status.sent(session, [(item.id, future.result()[1]) for item, future in sent])
    _let_go([item.id for item, _future in sent])
    batch.outcomes["sent"] += len(sent)
    logger.info("sent %s emails: %s", len(sent), ", ".join(str(item.id) for item, _future in sent))


def _release(services: Services, ids: list[int]) -> None:
    """Claimed but never tried: back to scheduled, the claim not counted as an attempt."""
    if ids:
        with session_scope(services.engine) as session:
            status.release(session, ids)
        _let_go(ids)


# ---------------------------------------------------------------------------------------------------- opt-outs


def _blocked(session: Session, row: OutboundEmail, suppressed: set[str]) -> str | None:
    """Opt-outs are absolute: a suppressed or undeliverable customer address gets nothing, ever."""
    if row.customer_id is None:
        return None
    return "suppressed" if row.to_address.lower() in suppressed else status.opt_out(
        session.get(Customer, row.customer_id), suppressed)


def reminder_moot(session: Session, row: OutboundEmail) -> str | None:
    """Why a due debrief_reminder must not go (its debrief was submitted), else None."""
    if row.kind != "debrief_reminder" or row.outcome_id is None:
        return None
    outcome = session.get(Outcome, row.outcome_id)
    return "debrief submitted" if outcome is not None and outcome.debrief_submitted_at else None


class OptOuts:
    """Opt-outs as the sender threads see them, so one that arrives after an email was composed still stops it.

    Composing checked the whole list; after that, only the addresses added since are fetched, at most every
    OPT_OUT_REFRESH seconds (one small query for every thread, instead of one per email).
    """

    MARGIN = timedelta(seconds=60)  # a suppression committed this long after its created_at is still seen

    def __init__(self, services: Services):
        self.services, self.lock = services, threading.Lock()
        self.addresses: set[str] = set()
        self.since, self.checked = datetime.now(UTC), time.monotonic()

    def stopped(self, address: str) -> bool:
        if time.monotonic() - self.checked > OPT_OUT_REFRESH:
            with self.lock:
                if time.monotonic() - self.checked > OPT_OUT_REFRESH:
                    self._refresh()
        return address.lower() in self.addresses

    def _refresh(self) -> None:
        now = datetime.now(UTC)
        with session_scope(self.services.engine) as session:
            self.addresses.update(session.exec(select(Suppression.email)
                                               .where(Suppression.created_at >= self.since - self.MARGIN)))
        self.since, self.checked = now, time.monotonic()


# ---------------------------------------------------------------------------------------------------- composing


def _preload(session: Session, rows: list[OutboundEmail]) -> list:
    """Reps, outcomes and customers of the batch in three queries; session.get then finds them in memory.

    The session's identity map holds objects weakly: the caller keeps the returned list alive for the batch.
    """
    loaded = []
    for model, ids in ((Rep, {r.rep_id for r in rows}), (Outcome, {r.outcome_id for r in rows} - {None}),
                       (Customer, {r.customer_id for r in rows} - {None})):
        if ids:
            loaded += session.exec(select(model).where(model.id.in_(sorted(ids))))
    return loaded


def _compose(session: Session, row: OutboundEmail, services: Services, templates: dict):
    context = template_context(session, row, services.settings)
    rendered = render_email(session, row.kind, row.variant, row.language, context, cache=templates,
                            render=_renderer)
    return compose(_envelope(session, row, services, context["links"]["unsubscribe"] or None),
                   _threaded(session, row, rendered))


def _threaded(session: Session, row: OutboundEmail, rendered):
    """The thank-you answers the recap in its thread: 'Re: <the meeting's subject>'."""
    subject = thread_subject(row, session.get(Outcome, row.outcome_id) if row.outcome_id else None)
    return type(rendered)(subject, rendered.text, rendered.html, rendered.version) if subject else rendered


def _envelope(session: Session, row: OutboundEmail, services: Services, unsubscribe_url: str | None) -> Envelope:
    """`unsubscribe_url` is the signed link the template context made (customers only)."""
    settings = services.settings
    rep = session.get(Rep, row.rep_id)
    outcome = session.get(Outcome, row.outcome_id) if row.outcome_id else None
    to_customer = row.customer_id is not None
    sender = address(rep.name if to_customer else "Keepwarm",
                     rep.email if (settings.send_as_rep and to_customer) else settings.intake_address)
    in_reply_to, references = thread_of(row, outcome)
    return Envelope(
        sender=sender, to=address(row.to_name, row.to_address),
        reply_to=address(rep.name, rep.email) if to_customer and not settings.send_as_rep else None,
        message_id=row.message_id, date=datetime.now(UTC), in_reply_to=in_reply_to, references=references,
        unsubscribe_url=unsubscribe_url if to_customer else None,
        unsubscribe_mailto=_unsubscribe_mailto(settings) if to_customer else None)


def _unsubscribe_mailto(settings) -> str:
    local, _, domain = settings.intake_address.partition("@")
    return f"mailto:{local}+unsubscribe@{domain}?subject=unsubscribe"


# ---------------------------------------------------------------------------------------------------- failures


def _defer(services: Services, outbound_id: int, due_at: datetime, why: str, batch: Batch) -> None:
    """The relay's limit or pause: back to scheduled, due when the turn comes, not counted as a try."""
    with session_scope(services.engine) as session:
        if status.defer(session, outbound_id, due_at, why):
            batch.follow_ups.append((outbound_id, due_at))
            batch.outcomes["deferred"] += 1


def _transient(services: Services, outbound_id: int, error: Exception, batch: Batch) -> None:
    """4xx or a dropped connection: scheduled again after the next back-off interval; then, failed."""
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if row.attempts > len(schedule.RETRY_INTERVALS):
            if status.fail(session, outbound_id, f"gave up after {row.attempts} tries: {error}", failure="relay"):
                batch.outcomes["failed"] += 1
                _alert_relay(row, str(error))
            return
        due = datetime.now(UTC) + timedelta(seconds=schedule.RETRY_INTERVALS[row.attempts - 1])
        if status.retry_at(session, outbound_id, due, str(error)):
            batch.follow_ups.append((outbound_id, due))
            batch.outcomes["retry"] += 1
    logger.warning("outbound %s: temporary failure, will retry: %s", outbound_id, error)


def _permanent(services: Services, outbound_id: int, error: PermanentSendError, batch: Batch) -> None:
    """5xx. The recipient's address refused: failed, the customer marked undeliverable and the rep told. Any other
    refusal (our sender, login, content, relaying) says nothing about the customer: failed as a relay failure,
    for an admin to retry once the relay is fixed."""
    failure = "address" if error.address_refused else "relay"
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if not status.fail(session, outbound_id, str(error), failure=failure):
            return
        batch.outcomes["failed"] += 1
        if failure == "relay":
            _alert_relay(row, str(error))
        elif row.customer_id is not None:
            status.mark_undeliverable(session, [row.to_address], str(error))
            notice = _notice_rep(session, row, str(error), services)
            batch.follow_ups.append((notice.id, notice.due_at))


def _alert_relay(row: OutboundEmail, error: str) -> None:
    """The admin's alert (with the count on /admin/): an ERROR line, since nothing will send it again by itself."""
    logger.error("outbound %s to %s failed at the relay, customer kept: %s. Fix the relay, then retry the failed "
                 "emails (/admin/ or `keepwarm outbox retry-failed`)", row.id, row.to_address, error)


def _notice_rep(session: Session, row: OutboundEmail, error: str, services: Services) -> OutboundEmail:
    rep = session.get(Rep, row.rep_id)
    notice = new_outbound(services.settings, kind="rep_notice", rep=rep, to_address=rep.email, to_name=rep.name,
                          due_at=datetime.now(UTC), outcome_id=row.outcome_id, language=row.language)
    notice.notice = {"address": row.to_address, "error": error[:500]}
    session.add(notice)
    session.flush()
    return notice
