"""Reading mail on every core: reading is pure and CPU-bound, so batches are read in worker processes.

With one worker (the tests' setting) everything runs inline, in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from service.intake.reading import Reading
from service.intake.store import LoadedBatch, read_batch
from service.settings import Settings

logger = logging.getLogger(__name__)

Readings = dict[int, Reading | BaseException]


def worker_count(settings: Settings) -> int:
    return settings.read_workers or min(os.cpu_count() or 1, 4)


class Readers:
    """`submit` a loaded batch, get its readings later: the next batch is read while this one is recorded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.workers = worker_count(settings)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, batch: LoadedBatch) -> list[Future]:
        if self.workers <= 1 or len(batch.messages) < 2:
            return [_done(read_batch(batch, self.settings))]
        size = -(-len(batch.messages) // self.workers)
        parts = [LoadedBatch(batch.messages[i:i + size], batch.directory)
                 for i in range(0, len(batch.messages), size)]
        return [self._executor().submit(_read_safely, part, self.settings) for part in parts]

    def warm_up(self) -> None:
        """Start the reader processes and build their phrase index now (a poller does so once; the first batch
        need not wait)."""
        if self.workers > 1:
            list(self._executor().map(_ready, range(self.workers)))
        else:
            _ready(0)

    def collect(self, futures: list[Future], batch: LoadedBatch) -> Readings:
        """The readings; if a reader process died, the batch is read again here."""
        readings: Readings = {}
        try:
            for future in futures:
                readings.update(future.result())
        except BrokenProcessPool:
            logger.error("a reader process died; reading this batch in the poller itself")
            self.close()
            return read_batch(batch, self.settings)
        return readings

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: readers start from a clean process, not a fork of a poller holding sockets and threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["service.intake.reading"])
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _read_safely(batch: LoadedBatch, settings: Settings) -> Readings:
    """read_batch in a reader process; exceptions that will not pickle are sent back as text."""
    readings = read_batch(batch, settings)
    return {k: (RuntimeError(f"{type(v).__name__}: {v}") if isinstance(v, BaseException) else v)
            for k, v in readings.items()}


def _ready(_: int) -> bool:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from service.notes import understand

    # The phrase tables compile at import; the literal index behind them on the first note read.
    understand("Thanks for the meeting; no budget until March.", sent_at=datetime.now(UTC), tz=ZoneInfo("UTC"))
    return True


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future
