"""Signed links: unsubscribe, debrief and the rep's manage links. itsdangerous signs; nothing is home-made.

Each purpose has its own salt, so a token made for one page is refused by every other.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from service.settings import Settings

DAY = 24 * 3600


class TokenError(ValueError):
    """A link that is tampered with, made for another page, or expired."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Signer:
    settings: Settings

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.settings.secret_key or "", salt=f"keepwarm.{purpose}")

    def make(self, purpose: str, payload: dict) -> str:
        return self._serializer(purpose).dumps(payload)

    def read(self, purpose: str, token: str, *, max_age_days: float | None = None) -> dict:
        """The payload, or TokenError saying whether the link expired or is simply not ours."""
        max_age = int(max_age_days * DAY) if max_age_days is not None else None
        try:
            return self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired", expired=True) from None
        except BadSignature:
            raise TokenError("this link is not valid") from None

    def make_lasting(self, purpose: str, payload: dict) -> str:
        """A token without a date: the same payload always gives the same token, and it never expires (what it
        signs must carry its own revocation, as a calendar feed's key does)."""
        return URLSafeSerializer(self.settings.secret_key or "", salt=f"keepwarm.{purpose}").dumps(payload)

    def read_lasting(self, purpose: str, token: str) -> dict:
        """The payload of a `make_lasting` token, or TokenError."""
        try:
            return URLSafeSerializer(self.settings.secret_key or "", salt=f"keepwarm.{purpose}").loads(token)
        except BadSignature:
            raise TokenError("this link is not valid") from None

    def url(self, path: str, token: str) -> str:
        return f"{self.settings.base_url}{path}/{token}"
