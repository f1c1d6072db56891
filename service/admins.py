"""Admins: hashed passwords, and login throttling per address (in the database) and per IP (in memory)."""

from __future__ import annotations

import hashlib
import hmac
import logging
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

MAX_FAILED_LOGINS = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
# Checked against when the address is unknown, so a wrong address costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("keepwarm-dummy-password")


class LoginRefused(Exception):
    """Why a login did not succeed; the message is safe to show (it never says whether the address exists)."""

    def __init__(self, message: str, *, locked: bool = False):
        super().__init__(message)
        self.locked = locked


WRONG = "The email or the password is wrong."
LOCKED = "Too many failed attempts. Wait 15 minutes, then try again."


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
    """Create an admin, or set a new password for an existing one (which also unlocks and re-enables it)."""
    email = normalise_email(email)
    check_password_strength(password)
    with session_scope(engine) as session:
        admin = session.exec(select(Admin).where(Admin.email == email)).first() or Admin(email=email, password_hash="")
        admin.password_hash = generate_password_hash(password)
        admin.active, admin.failed_logins, admin.locked_until = True, 0, None
        session.add(admin)
        session.flush()
        return admin


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None) -> Admin:
    """The admin for these credentials, or LoginRefused; failures are counted and lock the address."""
    now = now or datetime.now(UTC)
    admin = _find(session, email)
    if admin is None:
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginRefused(WRONG)
    if admin.locked_until and admin.locked_until > now:
        raise LoginRefused(LOCKED, locked=True)
    if not check_password_hash(admin.password_hash, password or ""):
        _count_failure(admin, now)
        raise LoginRefused(LOCKED if admin.locked_until else WRONG, locked=bool(admin.locked_until))
    admin.failed_logins, admin.locked_until, admin.last_login_at = 0, None, now
    return admin


def _find(session: Session, email: str) -> Admin | None:
    try:
        email = normalise_email(email)
    except ValueError:
        return None
    return session.exec(select(Admin).where(Admin.email == email, Admin.active == True)).first()  # noqa: E712


def _count_failure(admin: Admin, now: datetime) -> None:
    """The fifth failure in a row locks the address; an expired lock starts the count again."""
    if admin.locked_until and admin.locked_until <= now:
        admin.failed_logins, admin.locked_until = 0, None
    admin.failed_logins += 1
    if admin.failed_logins >= MAX_FAILED_LOGINS:
        admin.locked_until = now + LOCK_FOR
        logger.warning("admin %s locked for %s after %s failed logins", admin.email, LOCK_FOR, admin.failed_logins)


def session_token(admin: Admin, secret: str) -> str:
    """Changes when the password changes, so a new password logs out every other session."""
    return hmac.new(secret.encode(), admin.password_hash.encode(), hashlib.sha256).hexdigest()[:20]


_MAX_KEYS = 10_000


@dataclass
class Throttle:
    """At most `limit` failures per key in a sliding `window` of seconds (in memory: per web process)."""

    limit: int
    window: float
    _hits: dict[str, deque] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, key: str) -> bool:
        """True when `key` has used up its failures in the window."""
        with self._lock:
            return len(self._recent(key)) >= self.limit

    def fail(self, key: str) -> None:
        """Count one failure for `key`."""
        with self._lock:
            self._recent(key).append(time.monotonic())
            if len(self._hits) > _MAX_KEYS:  # many addresses or IPs: forget those with no recent failure
                self._hits = {k: hits for k, hits in self._hits.items() if self._recent(k)}

    def clear(self, key: str) -> None:
        """Forget `key`'s failures (after a successful login)."""
        with self._lock:
            self._hits.pop(key, None)

    def reset(self) -> None:
        """Forget every failure (tests; a restart does the same)."""
        with self._lock:
            self._hits.clear()

    def _recent(self, key: str) -> deque:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] < time.monotonic() - self.window:
            hits.popleft()
        return hits


# Per web process: 20 failures from one IP in 15 minutes stop that IP for the rest of the window; the
# per-address limit here also covers unknown addresses, so the answer never tells which addresses exist.
ip_throttle = Throttle(limit=20, window=LOCK_FOR.total_seconds())
address_throttle = Throttle(limit=MAX_FAILED_LOGINS, window=LOCK_FOR.total_seconds())


def attempt_login(engine: Engine, email: str, password: str, *, ip: str) -> Admin:
    """Throttles, then the password check; every outcome is in the audit log."""
    key = (email or "").strip().lower()[:200]
    if ip_throttle.blocked(ip) or address_throttle.blocked(key):
        raise LoginRefused(LOCKED, locked=True)
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


def _check(session: Session, email: str, password: str) -> Admin | LoginRefused:
    try:
        return authenticate(session, email, password)
    except LoginRefused as refused:
        return refused


def _note_failure(session: Session, key: str, ip: str, refused: LoginRefused) -> None:
    ip_throttle.fail(ip)
    address_throttle.fail(key)
    record(session, "login.failed", admin_id=None, actor=key, target=key,
           detail={"ip": ip, "locked": refused.locked})
