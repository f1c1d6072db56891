"""The RQ worker: our queues, the scheduler, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import logging

from rq import Worker

from service.context import QUEUES, Services

logger = logging.getLogger(__name__)


def run_worker(services: Services, *, burst: bool = False) -> bool:
    """Work the queues in priority order; the scheduler moves due `enqueue_at` jobs onto them."""
    queues = [services.queue(name) for name in QUEUES]
    worker = Worker(queues, connection=services.redis)
    # RQ only runs scheduled jobs when asked: without with_scheduler nothing enqueued `at` would ever start.
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
