"""The RQ worker: our queues, the scheduler, the periodic reconciler, leases on the emails being sent, a clean
shutdown on SIGTERM, and a worker that outlives a Redis restart."""

from __future__ import annotations

import logging
import signal
import threading
import time

import redis
from rq import SimpleWorker
from rq.scheduler import RQScheduler

from service.context import QUEUES, Services

logger = logging.getLogger(__name__)

RECONCILE_EVERY = 60  # seconds; whichever worker takes the minute's lock does it
REDIS_CHECK_EVERY = 2  # seconds between looks at Redis's run id: a restarted server is reconciled at once
LEASE_EVERY = 10  # seconds between renewals of this worker's claim on the emails it is sending
REDIS_WAIT_MAX = 10  # seconds between tries to reach a Redis that went away
# Seconds a job may stay in RQ's schedule past its time before a worker moves it to its queue itself: RQ's scheduler
# (one per deployment, behind a lock) moves due jobs every second, but a worker killed -9 keeps the lock for 61 s.
SCHEDULE_LATE = 2


class BoundedWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs run in the worker process), whose stop never waits on its pub/sub thread for long.
    The tests' burst workers are this class too."""

    def unsubscribe(self):
        """RQ's own, with a bounded wait: its pub/sub thread may sit up to a minute in redis-py's get_message
        after the unsubscribe (3 stops in 11 took 30+ s here), and RQ joins it without a timeout.

        The thread is told to stop before the unsubscribe, whose answer wakes it: told after, it had often gone
        back to its minute-long read, and every stop waited out the whole bound (1 s for each burst worker)."""
        if self.pubsub_thread:
            self.pubsub_thread.stop(timeout=0)  # clears its running flag, waits for nothing
            self.pubsub.unsubscribe()
            self.pubsub_thread.join(timeout=1)  # a daemon thread: it ends on its own, or with the process
            self.pubsub.close()


class _Worker(BoundedWorker):
    """Telling a stop we were asked for (SIGTERM, SIGINT) from a loop that ended on its own; a drain in progress
    winds down at once instead of running its course (up to a minute, sender.DRAIN_SECONDS)."""

    def __init__(self, *args, asked_to_stop: threading.Event, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked_to_stop = asked_to_stop

    def request_stop(self, signum, frame):
        from service.outbox.sender import stop_sending

        self.asked_to_stop.set()
        stop_sending()  # the drain stops claiming and gives back what it held unsent; RQ waits for it to return
        return super().request_stop(signum, frame)


def run_worker(services: Services, *, burst: bool = False) -> bool:
    """Work the queues in priority order; the scheduler moves due `enqueue_at` jobs onto them.

    RQ's work loop returns when Redis fails under it (a restart, a failover). Unless we were asked to stop, a new
    worker starts as soon as Redis answers again: no supervisor is needed to outlive a Redis restart.
    """
    # Loaded once here, not on the first send. jobs.intake (an admin's reprocess) is left to its first job: it
    # brings the note reader, whose phrase tables cost seconds of CPU at every worker start.
    import jobs.outbox  # noqa: F401

    stop, asked_to_stop = threading.Event(), threading.Event()
    if not burst:
        _revive_own(services)
    reconcile_once(services)
    if not burst:
        for target, name in ((_reconcile_forever, "reconciler"), (_lease_forever, "leases"),
                             (_watch_forever, "watch")):
            threading.Thread(target=target, args=(services, stop), daemon=True, name=name).start()
    queues = [services.queue(name) for name in QUEUES]
    worked = False
    try:
        while True:
            # SimpleWorker runs jobs in this process instead of forking a work horse per job: the SMTP connections
            # and the database pool live across sends (a fork per job measured ~170 ms a send). Job timeouts still
            # apply (SIGALRM), and a crash of this process is what the reconciler and the leases are for.
            worker = _Worker(queues, connection=services.redis, asked_to_stop=asked_to_stop)
            try:
                # RQ only runs scheduled jobs when asked: without with_scheduler nothing enqueued `at` would start.
                worked = worker.work(burst=burst, with_scheduler=True, logging_level="INFO") or worked
            except redis.exceptions.RedisError:
                logger.exception("the worker lost Redis")
            if burst or asked_to_stop.is_set() or not _await_redis(services, asked_to_stop):
                return worked
            logger.warning("the worker loop ended without a stop request (Redis restarted?): starting a new one")
    finally:
        stop.set()


def _await_redis(services: Services, asked_to_stop: threading.Event) -> bool:
    """Wait until Redis answers (True), or until SIGTERM/SIGINT (False).

    While it waits, a signal only sets `asked_to_stop`. Once Redis answers, the default handlers are back until
    the next loop installs RQ's, as at the first start: a signal in between ends the process (it holds nothing
    then). Left to set the event, it would be lost: the new loop never looks at it, and its scheduler process,
    forked with that handler, would ignore the stop its worker sends it and be waited for forever.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: asked_to_stop.set())
    try:
        delay = 0.5
        while not asked_to_stop.is_set():
            try:
                if services.redis.ping():
                    return True
            except redis.exceptions.RedisError as error:
                logger.warning("Redis does not answer yet (%s); next try in %.0f s", error, delay)
            asked_to_stop.wait(delay)
            delay = min(delay * 2, REDIS_WAIT_MAX)
        return False
    finally:
        if not asked_to_stop.is_set():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _revive_own(services: Services) -> None:
    """Send at once what this worker's previous life left mid-send (see settings.worker_id)."""
    from service.outbox.schedule import revive_own

    try:
        revive_own(services)
    except Exception:  # committed rows wait for the reconciler; a database still away is the lease's job later
        logger.exception("could not give back what this worker's previous run left mid-send")
    _revive_own_webhooks(services)


def _revive_own_webhooks(services: Services) -> None:
    """Post again at once the webhook deliveries this worker's previous life left mid-try."""
    from service.webhooks.delivery import revive_own

    try:
        revive_own(services)
    except Exception:  # their lease lapses, and the reconciler gives them back then
        logger.exception("could not give back the webhook deliveries this worker's previous run left mid-try")


def reconcile_once(services: Services, *, force: bool = False) -> int | None:
    """Rebuild missing jobs from the database, unless another worker did so in the last minute (`force`: now, as
    after a Redis restart, when every worker's jobs are gone alike)."""
    from service.outbox.schedule import reconcile

    try:
        taken = services.redis.set("keepwarm:reconciler", "1", nx=True, ex=RECONCILE_EVERY - 5)
        if not (taken or force):
            return None
        queued = reconcile(services)
    except Exception:  # a failed round is retried next minute; the worker itself keeps working
        logger.exception("reconcile failed")
        return None
    _reconcile_webhooks(services)
    return queued


def _reconcile_webhooks(services: Services) -> None:
    """The webhook deliveries' share of the reconcile (service.webhooks.delivery.reconcile)."""
    from service.webhooks.delivery import reconcile

    try:
        reconcile(services)
    except Exception:  # retried next minute
        logger.exception("webhooks reconcile failed")


def _reconcile_forever(services: Services, stop: threading.Event) -> None:
    """Reconcile every RECONCILE_EVERY seconds, and at once when Redis comes back as a new server (a restart or a
    failover loses every queued job: waiting for the minute made the emails due meanwhile up to a minute late)."""
    rounds, since, known = 0, time.monotonic(), _redis_run_id(services)
    while not stop.wait(REDIS_CHECK_EVERY):
        run_id = _redis_run_id(services)
        restarted = run_id is not None and known is not None and run_id != known
        known = run_id or known
        if restarted:
            logger.warning("Redis restarted (a new server run): rebuilding the queue from the database now")
            reconcile_once(services, force=True)
        if time.monotonic() - since < RECONCILE_EVERY:
            continue
        since = time.monotonic()
        reconcile_once(services)
        rounds += 1
        if rounds % 60 == 1:  # hourly: delete raw bodies past their retention
            _purge(services)


def _redis_run_id(services: Services) -> str | None:
    """The Redis server's run id (new at every start), or None when it does not answer."""
    try:
        return services.redis.info("server").get("run_id")
    except Exception:  # Redis away: the worker loop waits for it; nothing to compare yet
        return None


def _lease_forever(services: Services, stop: threading.Event) -> None:
    """Keep this worker's claimed emails fresh, and give back the ones a dead worker left in `sending`."""
    from service.outbox.schedule import revive_abandoned
    from service.outbox.sender import renew_leases

    while not stop.wait(LEASE_EVERY):
        try:
            renew_leases(services)
            revive_abandoned(services)
        except Exception:  # the next round tries again
            logger.exception("lease renewal failed")


def _watch_forever(services: Services, stop: threading.Event) -> None:
    """Every second: this worker says it is alive (sender.announce), the rows of workers known dead are given
    back (schedule.revive_dead_holders, without waiting for their lease to lapse), and RQ's scheduler is stood in
    for while it does not run: jobs SCHEDULE_LATE past their time in the schedule are moved to their queues here,
    with RQ's own code.

    RQ runs one scheduler for all workers, in a child process of whichever worker holds its lock (61 s, refreshed
    every second). A worker killed -9 takes its scheduler along but leaves the lock, which the other workers only
    try to take every ten minutes (or at their start, while the lock is still there): nothing scheduled started
    for a minute after such a kill in the soak (and after a Redis restart, which keeps the lock on disk). A job
    moved twice (by RQ's scheduler too) only drains what is still due."""
    from service.outbox.schedule import revive_dead_holders
    from service.outbox.sender import announce

    scheduler = RQScheduler([services.queue(name) for name in QUEUES], connection=services.redis)
    told = None  # the scheduler lock last said to be stuck: one warning for each
    failing: dict[str, str] = {}  # step → the failure last warned about: one warning for each new one
    while True:
        moved = 0
        for step, run in (("announce", lambda: announce(services)),
                          ("revive_dead_holders", lambda: revive_dead_holders(services)),
                          ("move_overdue_jobs", lambda: move_overdue_jobs(services, scheduler))):
            try:  # each on its own: a refused CLIENT SETNAME must not stop the jobs being moved
                result = run()
            except Exception as error:  # Redis or the database away: the worker loop waits for them; next second
                if failing.get(step) != type(error).__name__:
                    logger.warning("worker watch: %s failed: %s", step, error)
                    failing[step] = type(error).__name__
                continue
            failing.pop(step, None)
            if step == "move_overdue_jobs":
                moved = result
        if moved and told != (lock := _scheduler_lock(services)):
            logger.warning("RQ's scheduler is not running (lock %s): moving jobs past their time to the queues "
                           "until it does", lock)
            told = lock
        if stop.wait(1):
            return


def move_overdue_jobs(services: Services, scheduler: RQScheduler, *, late: float = SCHEDULE_LATE) -> int:
    """Move to their queues the scheduled jobs due by now, if any is `late` seconds past its time; how many."""
    now = time.time()
    queues = [services.queue(name) for name in QUEUES]
    overdue = [q.name for q in queues if services.redis.zcount(q.scheduled_job_registry.key, 0, now - late)]
    if not overdue or not services.redis.set("keepwarm:schedule-standin", "1", nx=True, ex=1):
        return 0  # none, or another worker does it this second
    moved = 0
    for _ in range(20):  # RQ moves at most 1,000 jobs a queue per call
        due = sum(services.redis.zcount(services.queue(name).scheduled_job_registry.key, 0, int(now))
                  for name in overdue)  # RQ's scheduler takes the jobs due by the current whole second
        if not due:
            break
        scheduler.prepare_registries(overdue)
        scheduler.enqueue_scheduled_jobs()
        moved += due
    logger.info("moved %s jobs past their time in RQ's schedule to their queues", moved)
    return moved


def _scheduler_lock(services: Services) -> str:
    try:
        holder = services.redis.get(RQScheduler.get_locking_key("outbox"))
    except redis.exceptions.RedisError:
        return "unknown"
    return holder.decode() if holder else "free"


def _purge(services: Services) -> None:
    from service.customers.privacy import purge_raw

    try:
        purge_raw(services.engine, services.settings.raw_retention_days)
    except Exception:  # retried next hour
        logger.exception("retention purge failed")
