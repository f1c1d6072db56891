"""Admins: hashed passwords, sessions that logout ends everywhere, and login throttling: per IP first (in memory),
then per address with growing waits (in the database, and in memory for unknown addresses alike).

No failure count ever locks an address out: a stranger who knows an admin's address can make them wait at most
MAX_WAIT, and only while the stranger's own IP still has tries left.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from service.audit import record
from service.db import session_scope
from service.models import Admin

logger = logging.getLogger(__name__)

FREE_FAILURES = 5  # failures in a row an address gets before each next try must wait
MAX_WAIT = 60.0  # seconds: the longest wait after a failure, however many came before
IP_WINDOW = timedelta(minutes=15)
IP_TRIES = 20  # refused tries per IP in IP_WINDOW before that IP must wait out the window
MIN_PASSWORD_LENGTH = 10
# Checked against when the address is unknown, so a wrong address costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("keepwarm-dummy-password")


class LoginRefused(Exception):
    """Why a login did not succeed; the message is safe to show (it never says whether the address exists).

    `retry_after` (seconds) is set when the refusal is a throttle, not a wrong password.
    """

    def __init__(self, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


WRONG = "The email or the password is wrong."


def must_wait(seconds: float) -> LoginRefused:
    """The refusal of a try that came too soon."""
    seconds = max(1, math.ceil(seconds))
    return LoginRefused(f"Too many failed attempts. Wait {seconds} second{'s' if seconds != 1 else ''}, then try "
                        "again.", retry_after=seconds)


def wait_after(failures: int) -> float:
    """Seconds an address waits after `failures` in a row: none for the first few, then 1, 2, 4 … up to MAX_WAIT."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(2.0 ** (failures - FREE_FAILURES), MAX_WAIT)


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; refuses anything that is not one plain address."""
    email = (email or "").strip().lower()
    if email.count("@") != 1 or any(c.isspace() or c in "<>,;\"'" for c in email) or email.startswith("@"):
        raise ValueError(f"{email!r} is not an email address")
    return email


def check_password_strength(password: str) -> None:
    """Refuse a password shorter than MIN_PASSWORD_LENGTH."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_admin(engine: Engine, email: str, password: str) -> Admin:
    """Create an admin, or give one a new password: re-enabled, failures forgotten, every session ended."""
    email = normalise_email(email)
    check_password_strength(password)
    with session_scope(engine) as session:
        admin = session.exec(select(Admin).where(Admin.email == email)).first() or Admin(email=email, password_hash="")
        admin.password_hash = generate_password_hash(password)
        admin.active, admin.failed_logins, admin.retry_after = True, 0, None
        end_sessions(admin)
        session.add(admin)
        session.flush()
        return admin


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None) -> Admin:
    """The admin for these credentials, or LoginRefused; failures are counted and make the address wait."""
    now = now or datetime.now(UTC)
    admin = _find(session, email)
    if admin is None:
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginRefused(WRONG)
    if admin.retry_after and admin.retry_after > now:  # set by another web process, which shares the database
        raise must_wait((admin.retry_after - now).total_seconds())
    if not check_password_hash(admin.password_hash, password or ""):
        _count_failure(admin, now)
        raise LoginRefused(WRONG)
    admin.failed_logins, admin.retry_after, admin.last_login_at = 0, None, now
    return admin


def _find(session: Session, email: str) -> Admin | None:
    try:
        email = normalise_email(email)
    except ValueError:
        return None
    return session.exec(select(Admin).where(Admin.email == email, Admin.active == True)).first()  # noqa: E712


def _count_failure(admin: Admin, now: datetime) -> None:
    """One more failure in a row; from the FREE_FAILURES-th on, the next try must wait (growing, bounded)."""
    admin.failed_logins += 1
    wait = wait_after(admin.failed_logins)
    admin.retry_after = now + timedelta(seconds=wait) if wait else None
    if wait:
        logger.warning("admin %s: %s failed logins in a row, next try in %.0f s", admin.email, admin.failed_logins,
                       wait)


def session_token(admin: Admin, secret: str) -> str:
    """Changes with the password and the session version: either change ends every session of the admin."""
    material = f"{admin.password_hash}:{admin.session_version}"
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()[:20]


def end_sessions(admin: Admin) -> None:
    """Every session of this admin stops working at its next request (logout, a new password)."""
    admin.session_version = (admin.session_version or 0) + 1


def log_out_everywhere(engine: Engine, admin_id: int) -> None:
    """Logout: end this admin's sessions on every browser, including any copy of the cookie."""
    with session_scope(engine) as session:
        admin = session.get(Admin, admin_id)
        if admin is not None:
            end_sessions(admin)


_MAX_KEYS = 10_000


@dataclass
class Throttle:
    """At most `limit` refused tries per key in a sliding `window` of seconds (in memory: per web process)."""

    limit: int
    window: float
    _hits: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again: 0 while it has tries left in the window."""
        with self._lock:
            hits = self._recent(key)
            return hits[0] + self.window - time.monotonic() if len(hits) >= self.limit else 0.0

    def fail(self, key: str) -> None:
        """Count one refused try for `key`."""
        with self._lock:
            self._recent(key).append(time.monotonic())
            if len(self._hits) > _MAX_KEYS:  # many IPs: forget those with no recent failure
                self._hits = {k: hits for k, hits in self._hits.items() if self._recent(k)}

    def reset(self) -> None:
        """Forget every failure (tests; a restart does the same)."""
        with self._lock:
            self._hits.clear()

    def _recent(self, key: str) -> deque:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] < time.monotonic() - self.window:
            hits.popleft()
        return hits


@dataclass
class Backoff:
    """Failures in a row per address and the wait they impose (wait_after), in memory: per web process."""

    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (count, monotonic time)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again."""
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            return max(0.0, last + wait_after(count) - time.monotonic())

    def fail(self, key: str) -> None:
        """One more failure in a row for `key`."""
        with self._lock:
            count, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (count + 1, time.monotonic())
            if len(self._failures) > _MAX_KEYS:  # many addresses: forget those not tried for a while
                oldest = time.monotonic() - IP_WINDOW.total_seconds()
                self._failures = {k: v for k, v in self._failures.items() if v[1] >= oldest}

    def clear(self, key: str) -> None:
        """Forget `key`'s failures (after a successful login)."""
        with self._lock:
            self._failures.pop(key, None)

    def reset(self) -> None:
        """Forget every failure (tests; a restart does the same)."""
        with self._lock:
            self._failures.clear()


# Per web process. The IP comes first: an IP that used up its tries is refused before any address is looked at,
# so one stranger cannot keep an admin's address waiting for long. The address backoff covers unknown addresses
# exactly like known ones, so the answers never tell which addresses exist.
ip_throttle = Throttle(limit=IP_TRIES, window=IP_WINDOW.total_seconds())
address_throttle = Backoff()


def attempt_login(engine: Engine, email: str, password: str, *, ip: str) -> Admin:
    """Per IP, then per address, then the password check; every password checked is in the audit log."""
    key = (email or "").strip().lower()[:200]
    _refuse_if_throttled(key, ip)
    with session_scope(engine) as session:
        outcome = _check(session, email, password)
        if isinstance(outcome, LoginRefused):
            _note_failure(session, key, ip, outcome)
        else:
            record(session, "login", admin_id=outcome.id, actor=outcome.email, target=outcome.email,
                   detail={"ip": ip})
    if isinstance(outcome, LoginRefused):
        raise outcome  # after the commit: the failure count and the audit entry must stick
    address_throttle.clear(key)
    return outcome


def _refuse_if_throttled(key: str, ip: str) -> None:
    ip_wait = ip_throttle.wait(ip)
    if ip_wait:
        raise must_wait(ip_wait)
    address_wait = address_throttle.wait(key)
    if address_wait:
        ip_throttle.fail(ip)  # hammering a waiting address uses up the IP's tries
        raise must_wait(address_wait)


def _check(session: Session, email: str, password: str) -> Admin | LoginRefused:
    try:
        return authenticate(session, email, password)
    except LoginRefused as refused:
        return refused


def _note_failure(session: Session, key: str, ip: str, refused: LoginRefused) -> None:
    ip_throttle.fail(ip)
    if refused.retry_after is None:  # a wrong password, not a try that came too soon
        address_throttle.fail(key)
    record(session, "login.failed", admin_id=None, actor=key, target=key,
           detail={"ip": ip, "wait": refused.retry_after})
