"""One active poller per mailbox, however many run: a Redis lock with a short lease, extended while alive."""

from __future__ import annotations

import logging
import uuid

from redis import Redis

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
        if self.held and self.redis.eval(_EXTEND, 1, self.key, self.token, self.lease_ms):
            return True
        self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.lease_ms))
        if self.held:
            logger.info("poller lock %s acquired", self.key)
        return self.held

    def release(self) -> None:
        if self.held and self.redis.get(self.key) == self.token.encode():
            self.redis.delete(self.key)
        self.held = False
