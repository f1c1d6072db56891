"""The endpoint secrets and the `Keepwarm-Signature` header (HMAC-SHA256 over "<timestamp>.<body>", as Stripe's).

A secret is not stored: it is derived from the app's secret key and the endpoint's random salt, so it can be
shown once and recomputed to sign, while a copy of the database alone signs nothing. Changing KEEPWARM_SECRET_KEY
changes every endpoint's secret: the stored fingerprint notices, and deliveries fail saying so (roll the secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from service.settings import Settings

HEADER = "Keepwarm-Signature"
TOLERANCE = 300  # seconds a receiver should accept between the signature's timestamp and its own clock


def new_salt() -> str:
    return secrets.token_urlsafe(24)


def endpoint_secret(settings: Settings, salt: str) -> str:
    """The endpoint's signing secret (`whsec_…`), the same every time for the same app key and salt."""
    if not settings.secret_key:
        raise ValueError("KEEPWARM_SECRET_KEY is not set: webhook secrets are derived from it")
    digest = hmac.new(settings.secret_key.encode(), f"keepwarm-webhook-secret:{salt}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def fingerprint(secret: str) -> str:
    """A short, harmless mark of a secret: shown to admins, compared to notice a changed app key."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def signature(secret: str, timestamp: int, body: str | bytes) -> str:
    """The header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    payload = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: str | bytes, *, tolerance: int = TOLERANCE,
           now: float | None = None) -> bool:
    """What a receiver does: the signature matches the body and is recent (a replay of an old one is refused)."""
    items = [item.strip().partition("=") for item in header.split(",")]
    stamps = [value for key, _, value in items if key == "t"]
    # Exactly one plain decimal timestamp: int() alone would take "1_7…", " 17…" or other scripts' digits.
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()):
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1].encode()
    # Bytes, not str: hmac.compare_digest raises TypeError on a str with non-ASCII characters (a crafted header
    # would crash the receiver instead of being refused).
    return any(hmac.compare_digest(expected, value.encode("utf-8", "replace"))
               for key, _, value in items if key == "v1")
