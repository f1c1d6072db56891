"""The login throttle: Flask-Limiter counting failed logins in the app's Redis, so every web worker (and every
process on every host) shares one count. Per client IP first, then per submitted address; never a lockout.

- Per IP: LOGIN_TRIES_PER_IP refused tries (a wrong password, or a try refused for its address) in a moving
  window; then that IP waits until its oldest try leaves the window.
- Per address: LOGIN_TRIES_PER_ADDRESS wrong passwords in a moving window, then each next try waits until the
  oldest leaves it: a stranger who knows an admin's address can slow it down for one window at most, and only
  while their own IP has tries left (a try refused by its IP never counts against the address). Unknown addresses
  are counted exactly like known ones, so the answers never tell which addresses exist.

A successful login is never counted. Both limits are app config, read at each request, so tests can shorten them.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app, render_template, request
from flask.wrappers import Response
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from service.team.admins import submitted_address
from service.web.admin.blueprint import bp
from service.web.admin.forms import LoginForm

logger = logging.getLogger(__name__)

LOGIN_TRIES_PER_IP = "20 per 15 minutes"
LOGIN_TRIES_PER_ADDRESS = "5 per minute"
_EXTENSION = "keepwarm.login_limiter"
_WRONG_PASSWORD = 401  # what the login view answers for a wrong address or password


def init_throttle(app: Flask) -> None:
    """A limiter for this app on the settings' Redis, around the login view (POSTs only)."""
    app.config.setdefault("LOGIN_TRIES_PER_IP", LOGIN_TRIES_PER_IP)
    app.config.setdefault("LOGIN_TRIES_PER_ADDRESS", LOGIN_TRIES_PER_ADDRESS)
    storage_uri, storage_options = _storage(app)
    # One limiter per app, not one per module: the extension keeps its storage on itself, and each app (each test's,
    # each process's) must count in its own settings' Redis. A moving window frees one try at a time, like the old
    # sliding window. Every limit is checked even after one refuses (fail_on_first_breach off), so a try refused for
    # its address is still charged to its IP. Redis down: each process counts in memory meanwhile, never a 500.
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri, storage_options=storage_options,
                      strategy="moving-window", key_prefix="keepwarm-login", fail_on_first_breach=False,
                      in_memory_fallback_enabled=True, swallow_errors=True)
    app.extensions[_EXTENSION] = limiter
    per_ip = limiter.limit(lambda: current_app.config["LOGIN_TRIES_PER_IP"], methods=["POST"],
                           deduct_when=_refused)
    per_address = limiter.limit(lambda: current_app.config["LOGIN_TRIES_PER_ADDRESS"], key_func=_address,
                                methods=["POST"], deduct_when=_wrong_password)
    app.view_functions["admin.login"] = per_ip(per_address(app.view_functions["admin.login"]))


def _storage(app: Flask) -> tuple[str, dict]:
    """The settings' Redis through the app's own connection pool; in memory (per process) without one."""
    services = app.config["KEEPWARM"]
    if not services.settings.redis_url:
        logger.warning("KEEPWARM_REDIS_URL is not set: each web process counts failed logins on its own")
        return "memory://", {}
    return services.settings.redis_url, {"connection_pool": services.redis.connection_pool}


def _address() -> str:
    """The submitted address, lower-cased: unknown and malformed ones are counted like real ones."""
    # Never empty: Flask-Limiter logs an error for an empty key (an empty address is a 400, never counted).
    return submitted_address(request.form.get("email")) or "(none)"


def _wrong_password(response: Response) -> bool:
    return response.status_code == _WRONG_PASSWORD


def _refused(response: Response) -> bool:
    """A wrong password, or a try refused for its address (hammering a waiting address uses up the IP's tries)."""
    return response.status_code in (_WRONG_PASSWORD, 429)


def must_wait(seconds: int) -> str:
    """The refusal of a try that came too soon."""
    return f"Too many failed attempts. Wait {seconds} second{'s' if seconds != 1 else ''}, then try again."


@bp.errorhandler(RateLimitExceeded)
def _too_many_tries(_error: RateLimitExceeded):
    """The login form again, saying how long to wait (429, Retry-After): the longest of the limits it hit."""
    wait = _seconds_to_wait(current_app.extensions[_EXTENSION])
    logger.info("login from %s for %r refused by the throttle: wait %d s", request.remote_addr, _address(), wait)
    page = render_template("admin/login.html", form=LoginForm(), error=must_wait(wait))
    return page, 429, {"Retry-After": str(wait)}


def _seconds_to_wait(limiter: Limiter) -> int:
    """Until every limit this try hit has room again (never more than its window: reset_at rounds up)."""
    now = time.time()
    waits = [min(math.ceil(hit.reset_at - now), hit.limit.get_expiry())
             for hit in limiter.current_limits if hit.breached]
    return max(1, *waits)
