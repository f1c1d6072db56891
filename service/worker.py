"""The RQ worker: our queues, the scheduler, the periodic reconciler, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import logging
import threading

from rq import SimpleWorker

from service.context import QUEUES, Services

logger = logging.getLogger(__name__)

RECONCILE_EVERY = 60  # seconds; whichever worker takes the minute's lock does it


def run_worker(services: Services, *, burst: bool = False) -> bool:
    """Work the queues in priority order; the scheduler moves due `enqueue_at` jobs onto them."""
    import jobs.intake  # noqa: F401  (loaded once here, not on each job)
    import jobs.outbox  # noqa: F401

    reconcile_once(services)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_reconcile_forever, args=(services, stop), daemon=True,
                         name="reconciler").start()
    queues = [services.queue(name) for name in QUEUES]
    # SimpleWorker runs jobs in this process instead of forking a work horse per job: the SMTP connection and
    # the database pool live across sends (a fork per job measured ~170 ms a send). Job timeouts still apply
    # (SIGALRM), and a crash of this process is what the reconciler and the `sending` state are for.
    worker = SimpleWorker(queues, connection=services.redis)
    try:
        # RQ only runs scheduled jobs when asked: without with_scheduler nothing enqueued `at` would ever start.
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()


def reconcile_once(services: Services) -> int | None:
    """Rebuild missing jobs from the database, unless another worker did so in the last minute."""
    from service.outbox.schedule import reconcile

    if not services.redis.set("keepwarm:reconciler", "1", nx=True, ex=RECONCILE_EVERY - 5):
        return None
    try:
        return reconcile(services)
    except Exception:  # a failed round is retried next minute; the worker itself keeps working
        logger.exception("reconcile failed")
        return None


def _reconcile_forever(services: Services, stop: threading.Event) -> None:
    rounds = 0
    while not stop.wait(RECONCILE_EVERY):
        reconcile_once(services)
        rounds += 1
        if rounds % 60 == 1:  # hourly: delete raw bodies past their retention
            _purge(services)


def _purge(services: Services) -> None:
    from service.privacy import purge_raw

    try:
        purge_raw(services.engine, services.settings.raw_retention_days)
    except Exception:  # retried next hour
        logger.exception("retention purge failed")
