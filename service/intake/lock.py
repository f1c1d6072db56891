"""One active poller per mailbox, however many run: a Redis lock with a short lease, extended while alive."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import LockNotOwnedError, RedisError
from redis.lock import Lock

logger = logging.getLogger(__name__)


class PollerLock:
    """`acquire_or_extend()` is True while this process is the mailbox's one active poller.

    redis-py's `Lock` does the Redis side: SET NX PX to take it, and Lua scripts that extend or delete the key only
    while it still holds this poller's token, so a poller whose lease ran out never extends or deletes the lock
    another poller took since.
    """

    def __init__(self, redis: Redis, mailbox_key: str, *, lease_seconds: int = 60):
        self.key = f"keepwarm:poller:{mailbox_key}"
        # Not thread-local (redis-py's default): the lock is this poller's, whichever thread extends or releases it.
        self.lock = Lock(redis, self.key, timeout=lease_seconds, blocking=False, thread_local=False)
        self.held = False

    def acquire_or_extend(self) -> bool:
        """False while Redis does not answer: nobody can hold the lock then, so nobody polls."""
        try:
            return self._acquire_or_extend()
        except RedisError as error:  # `held` stays as it was: our lease, if Redis kept it, is extended once back
            logger.warning("poller lock %s: Redis does not answer (%s); waiting", self.key, error)
            return False

    def _acquire_or_extend(self) -> bool:
        if self.held and self._extend():
            return True
        self.held = self.lock.acquire()
        if self.held:
            logger.info("poller lock %s acquired", self.key)
        return self.held

    def _extend(self) -> bool:
        """A full lease again, if the lock is still ours; False when it ran out (another poller may hold it now)."""
        try:
            return self.lock.reacquire()
        except LockNotOwnedError:
            logger.warning("poller lock %s: our lease ran out", self.key)
            return False

    def release(self) -> None:
        """Give the lock up now, if it is still ours; if Redis does not answer, the lease runs out by itself."""
        try:
            if self.held:
                self.lock.release()
        except LockNotOwnedError:
            logger.info("poller lock %s: our lease had run out; nothing to give up", self.key)
        except RedisError as error:
            logger.warning("poller lock %s not released (%s); its lease runs out", self.key, error)
        self.held = False
