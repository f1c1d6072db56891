"""Sending within the relay's limits: one pace for every worker on every host, kept in Redis.

The limits (KEEPWARM_RELAY_LIMITS for the relay, KEEPWARM_MAILBOX_LIMITS per sending mailbox when sending as
the rep) are counted by the `limits` library's moving window in Redis, the one Flask-Limiter uses: each email
takes its turn just before it goes, so N workers together never send more than the limit allows. A relay that
answers "too fast" or "over quota" anyway (another client shares the mailbox; its window is not ours) pauses
sending for everybody, with a backoff, instead of failing one email after another.

An email that cannot go now is not failed and not counted as an attempt: it goes back to `scheduled`, due when
its turn comes, in due order (see sender._send_one and status.defer).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from service.context import Services
from service.metrics import RELAY_PAUSE_KEY, relay_paused_until, waiting_on_limit

logger = logging.getLogger(__name__)

PAUSE_KEY = RELAY_PAUSE_KEY  # a Unix time: no email leaves before it
BACKOFF_KEY = "keepwarm:relay:throttled"  # how many throttling answers in a row (expires when they stop)
PAUSE_FIRST, PAUSE_MAX = 30.0, 900.0  # seconds: the first pause after a throttling answer, and the longest
_STEP = 0.05  # seconds: the least wait suggested, so a busy loop never spins
PAUSE_REFRESH = 0.2  # seconds a sender trusts its copy of the relay's pause


@dataclass
class Pace:
    """The turns of the relay (and of each sending mailbox) for this process's sender threads."""

    services: Services
    relay: list[RateLimitItem]
    mailbox: list[RateLimitItem]
    limiter: MovingWindowRateLimiter | None
    _until: float = 0.0
    _checked: float = float("-inf")

    @classmethod
    def of(cls, services: Services) -> Pace:
        settings = services.settings
        relay = parse_many(settings.relay_limits) if settings.relay_limits else []
        mailbox = parse_many(settings.mailbox_limits) if settings.mailbox_limits and settings.send_as_rep else []
        limiter = None
        if (relay or mailbox) and settings.redis_url:
            limiter = MovingWindowRateLimiter(storage_from_string(settings.redis_url))
        return cls(services, relay, mailbox, limiter)

    @property
    def limited(self) -> bool:
        return self.limiter is not None

    def turn(self, mailbox: str | None = None) -> float:
        """0.0 when an email may leave now (its turn is taken), else the seconds until it may try again."""
        paused = self.paused_for()
        if paused > 0:
            return paused
        if self.limiter is None:
            return 0.0
        items = [(item, ("relay",)) for item in self.relay]
        items += [(item, ("mailbox", mailbox.lower())) for item in self.mailbox] if mailbox else []
        for item, names in items:  # test every window first, so a refusal takes no turn from the others
            if not self.limiter.test(item, *names):
                return self._wait(item, names)
        for item, names in items:
            if not self.limiter.hit(item, *names):  # another worker took the last turn meanwhile
                return self._wait(item, names)
        return 0.0

    def room(self) -> int | None:
        """How many emails the relay's windows allow right now (None: no limit): what a sender claims at most."""
        if self.limiter is None or not self.relay:
            return None
        if self.paused_for() > 0:
            return 0
        return min(self.limiter.get_window_stats(item, "relay").remaining for item in self.relay)

    def opens_in(self) -> float:
        """Seconds until every relay window has a turn again (and any pause is over); 0.0 when one is free now."""
        wait = self.paused_for()
        if self.limiter is not None:
            for item in self.relay:
                stats = self.limiter.get_window_stats(item, "relay")
                if stats.remaining <= 0:
                    wait = max(wait, stats.reset_time - time.time())
        return max(wait, 0.0)

    def rate(self) -> float | None:
        """Emails a second the tightest relay limit allows over its window (None: no limit)."""
        if not self.relay:
            return None
        return min(item.amount / item.get_expiry() for item in self.relay)

    def seconds_for(self, emails: int) -> float | None:
        """About how long the relay's limits take to let `emails` more go (None: no limit): for each limit, the
        turns left in its window now, then whole windows of its amount; the slowest limit decides."""
        if self.limiter is None or not self.relay:
            return None
        slowest = 0.0
        for item in self.relay:
            stats = self.limiter.get_window_stats(item, "relay")
            if emails > stats.remaining:
                windows = math.ceil((emails - stats.remaining) / item.amount)
                first = max(stats.reset_time - time.time(), 0.0)
                slowest = max(slowest, first + (windows - 1) * item.get_expiry())
        return slowest

    def _wait(self, item: RateLimitItem, names: tuple[str, ...]) -> float:
        reset = self.limiter.get_window_stats(item, *names).reset_time
        return max(reset - time.time(), _STEP)

    # -- the relay's own word ------------------------------------------------------------------------------
    def pause(self) -> float:
        """The relay said "too fast" or "over quota": nobody sends for a while, longer each time it says so
        again; returns the pause's length in seconds."""
        redis = self.services.redis
        streak = int(redis.incr(BACKOFF_KEY))
        seconds = min(PAUSE_FIRST * 2 ** (streak - 1), PAUSE_MAX)
        redis.expire(BACKOFF_KEY, int(seconds * 2 + 60))
        until = time.time() + seconds
        current = float(redis.get(PAUSE_KEY) or 0)
        if until > current:
            redis.set(PAUSE_KEY, repr(until), px=int(seconds * 1000) + 1000)
        self._until, self._checked = max(until, current), time.monotonic()
        logger.warning("the relay is throttling us: sending paused for %.0f s (throttled %s times in a row)",
                       seconds, streak)
        return seconds

    def paused_for(self) -> float:
        """Seconds left in a pause the relay asked for (0.0: none), read from Redis at most every PAUSE_REFRESH
        seconds (one GET per email would cost a tenth of a send)."""
        now = time.monotonic()
        if now - self._checked > PAUSE_REFRESH:
            try:
                self._until = float(self.services.redis.get(PAUSE_KEY) or 0)
            except Exception:  # Redis away: the limiter's own errors will say so; do not stop sending for this
                self._until = 0.0
            self._checked = now
        return max(self._until - time.time(), 0.0)


@dataclass(frozen=True)
class Backlog:
    """What the relay's limit holds back, for the admin: how many emails, at what pace, done by when."""

    waiting: int
    limits: str
    paused_until: datetime | None
    done_by: datetime | None


def backlog(services: Services) -> Backlog | None:
    """None when nothing waits on a limit; else the queue's expected finish at the tightest limit's pace."""
    waiting = waiting_on_limit(services)
    if not waiting:
        return None
    now = datetime.now(UTC)
    paused = relay_paused_until(services)
    paused_until = datetime.fromtimestamp(paused, UTC) if paused > now.timestamp() else None
    seconds = Pace.of(services).seconds_for(waiting)
    start = paused_until or now
    done_by = start + timedelta(seconds=seconds) if seconds is not None else None
    return Backlog(waiting, services.settings.relay_limits, paused_until, done_by)
