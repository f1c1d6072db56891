"""One active poller per mailbox, however many run: a Redis lock with a short lease, extended while alive."""

from __future__ import annotations

import logging
import uuid

from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Lua: extend only if we still own the key, so a poller that lost its lease never steals it back silently.
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"


class PollerLock:
    """`acquire_or_extend()` is True while this process is the mailbox's one active poller."""

    def __init__(self, redis: Redis, mailbox_key: str, *, lease_seconds: int = 60):
        self.redis = redis
        self.key = f"keepwarm:poller:{mailbox_key}"
        self.token = uuid.uuid4().hex
        self.lease_ms = lease_seconds * 1000
        self.held = False

    def acquire_or_extend(self) -> bool:
        """False while Redis does not answer: nobody can hold the lock then, so nobody polls."""
        try:
            return self._acquire_or_extend()
        except RedisError as error:  # `held` stays as it was: our lease, if Redis kept it, is extended once back
            logger.warning("poller lock %s: Redis does not answer (%s); waiting", self.key, error)
            return False

    def _acquire_or_extend(self) -> bool:
        if self.held and self.redis.eval(_EXTEND, 1, self.key, self.token, self.lease_ms):
            return True
        self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.lease_ms))
        if self.held:
            logger.info("poller lock %s acquired", self.key)
        return self.held

    def release(self) -> None:
        """Give the lock up now; if Redis does not answer, the lease runs out by itself."""
        try:
            if self.held and self.redis.get(self.key) == self.token.encode():
                self.redis.delete(self.key)
        except RedisError as error:
            logger.warning("poller lock %s not released (%s); its lease runs out", self.key, error)
        self.held = False
