"""How Keepwarm proves itself to the mail servers and checks theirs: TLS contexts that verify every certificate
(trusting KEEPWARM_CA_FILE's private CA besides the system's), and OAuth2 access tokens for XOAUTH2 logins.

Intake (IMAP) and the outbox (SMTP) both use it, so it lives at the bottom and imports no stage.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from service.settings import Settings

logger = logging.getLogger(__name__)

# A token is refreshed when this share of its lifetime is left (at most REFRESH_AHEAD_MAX seconds before it ends),
# so a login never starts with a token about to lapse.
REFRESH_AHEAD_SHARE = 0.25
REFRESH_AHEAD_MAX = 300.0
# Lifetime assumed when the token endpoint does not say (RFC 6749 makes expires_in only recommended).
DEFAULT_LIFETIME = 600.0


class TLSNotOffered(ConnectionError):
    """The URL asks for STARTTLS and the server does not offer it: we never fall back to plain text."""


class TokenError(ConnectionError):
    """The token endpoint could not be reached or refused to issue a token (a connection error to the callers:
    the poller retries with backoff, an email stays transient)."""


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificates and host names checked; the system's CAs plus the private CA of KEEPWARM_CA_FILE."""
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def starttls_missing(what: str) -> TLSNotOffered:
    return TLSNotOffered(f"{what} does not offer STARTTLS, and the URL asks for it: not sending a login in plain "
                         "text (use the server's TLS port with imaps:// or smtps://, or fix the server)")


def xoauth2_string(user: str, token: str) -> str:
    """The XOAUTH2 initial response (Google's and Microsoft's SASL mechanism), before base64."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


class OAuth2TokenProvider:
    """Access tokens from a generic OAuth2 token endpoint (RFC 6749): the refresh-token grant (a user's consent,
    kept as a refresh token) or the client-credentials grant (the app's own access). One token is cached in
    memory for every thread and renewed before it lapses, or at once when a server refuses it."""

    def __init__(self, *, token_url: str, client_id: str, grant: str = "refresh_token",
                 client_secret: str | None = None, client_secret_file: Path | None = None, scope: str = "",
                 refresh_token: str | None = None, refresh_token_file: Path | None = None,
                 timeout: float = 20.0):
        self.token_url, self.client_id, self.grant, self.scope = token_url, client_id, grant, scope
        self._client_secret, self._client_secret_file = client_secret, client_secret_file
        self._refresh_token, self._refresh_token_file = refresh_token, refresh_token_file
        self.timeout = timeout
        self._lock = threading.Lock()
        self._cached: _Token | None = None
        self.fetches = 0  # how many tokens this provider fetched (for tests and `keepwarm check`)

    def token(self) -> str:
        """A valid access token: the cached one, else a fresh one."""
        with self._lock:
            if self._cached is None or time.monotonic() >= self._cached.refresh_at:
                self._cached = self._fetch()
            return self._cached.value

    def invalidate(self, token: str) -> None:
        """A server refused `token`: the next `token()` fetches another (unless another thread already did)."""
        with self._lock:
            if self._cached is not None and self._cached.value == token:
                self._cached = None

    def _fetch(self) -> _Token:
        from authlib.common.errors import AuthlibBaseError
        from requests import RequestException

        try:
            answer = self._request()
        except (AuthlibBaseError, RequestException, ValueError) as error:
            raise TokenError(f"no OAuth2 token from {_where(self.token_url)}: {error}") from None
        if not answer.get("access_token"):
            raise TokenError(f"no OAuth2 token from {_where(self.token_url)}: the answer has no access_token")
        if answer.get("refresh_token"):  # some providers (Microsoft) rotate it: the newest one is kept in memory
            self._refresh_token = answer["refresh_token"]
        lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME)
        self.fetches += 1
        logger.info("oauth2: new access token from %s (valid %.0fs)", _where(self.token_url), lifetime)
        ahead = min(lifetime * REFRESH_AHEAD_SHARE, REFRESH_AHEAD_MAX)
        return _Token(answer["access_token"], time.monotonic() + lifetime - ahead)

    def _request(self) -> dict:
        from authlib.integrations.requests_client import OAuth2Session

        secret = _secret(self._client_secret, self._client_secret_file)
        session = OAuth2Session(self.client_id, secret, scope=self.scope or None,
                                token_endpoint_auth_method="client_secret_post" if secret else "none")
        with session:
            if self.grant == "client_credentials":
                return dict(session.fetch_token(self.token_url, grant_type="client_credentials",
                                                timeout=self.timeout))
            refresh = self._current_refresh_token()
            return dict(session.refresh_token(self.token_url, refresh_token=refresh, timeout=self.timeout))

    def _current_refresh_token(self) -> str | None:
        """The setting's refresh token, else the file's (read once), else the newest one the endpoint sent."""
        if self._refresh_token is None and self._refresh_token_file is not None:
            self._refresh_token = _secret(None, self._refresh_token_file)
        return self._refresh_token


def _secret(value: str | None, path: Path | None) -> str | None:
    if path is not None:
        return path.read_text().strip() or None
    return value


def _where(url: str) -> str:
    """The endpoint without its query (never a secret in a log line)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


_providers: dict[tuple, OAuth2TokenProvider] = {}
_providers_lock = threading.Lock()


def token_provider(settings: Settings) -> OAuth2TokenProvider:
    """The process's provider for these OAuth settings: IMAP and SMTP, and every sender thread, share its token."""
    values = dict(token_url=settings.oauth_token_url or "", client_id=settings.oauth_client_id,
                  grant=settings.oauth_grant, client_secret=settings.oauth_client_secret,
                  client_secret_file=settings.oauth_client_secret_file, scope=settings.oauth_scope,
                  refresh_token=settings.oauth_refresh_token,
                  refresh_token_file=settings.oauth_refresh_token_file)
    key = tuple(values.values())
    with _providers_lock:
        if key not in _providers:
            _providers[key] = OAuth2TokenProvider(**values)
        return _providers[key]
