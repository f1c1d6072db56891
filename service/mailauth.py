"""How Keepwarm proves itself to the mail servers and checks theirs: TLS contexts that verify every certificate
(trusting KEEPWARM_CA_FILE's private CA besides the system's), and OAuth2 access tokens for XOAUTH2 logins.

Three token sources, chosen by KEEPWARM_OAUTH_PROVIDER, each running its vendor's own library:
- `microsoft`: app-only access to Microsoft 365 (client credentials through MSAL, scope
  https://outlook.office365.com/.default), one token for every mailbox the app was given;
- `google`: a Google Workspace service account with domain-wide delegation (google-auth signs a JWT with the key
  file's private key), one token per mailbox, since the mailbox is the JWT's subject;
- `generic`: any RFC 6749 token endpoint through Authlib, with the refresh-token or the client-credentials grant.
All three share one cache: a token is kept in memory, renewed before it lapses and renewed at once when a server
refuses it. Their HTTP goes through the same TLS policy as the mail (the system's CAs plus KEEPWARM_CA_FILE).

Intake (IMAP) and the outbox (SMTP) both use it, so it lives at the bottom and imports no stage.
"""

from __future__ import annotations

import datetime
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
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"


class TLSNotOffered(ConnectionError):
    """The URL asks for STARTTLS and the server does not offer it: we never fall back to plain text."""


class TokenError(ConnectionError):
    """The token endpoint could not be reached or refused to issue a token (a connection error to the callers:
    the poller retries with backoff, an email stays transient). `error` is the OAuth2 error code when the endpoint
    gave one (invalid_client, invalid_grant, unauthorized_client…); `hint` says what to do about it."""

    def __init__(self, message: str, *, error: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.error, self.hint = error, hint


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificates and host names checked; the system's CAs plus the private CA of KEEPWARM_CA_FILE."""
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def http_session(settings: Settings, timeout: float = 20.0):
    """A requests session for token endpoints with the mail's TLS policy: requests alone would trust certifi's
    CAs only, or KEEPWARM_CA_FILE only, never both. Every request gets `timeout` unless it names one."""
    import requests
    from requests.adapters import HTTPAdapter

    context = tls_context(settings)

    class _TLSAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

        def send(self, request, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("https://", _TLSAdapter())
    session.mount("http://", _TLSAdapter())
    return session


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
    lifetime: float


class TokenSource:
    """One access token cached in memory for every thread, renewed before it lapses, or at once when a server
    refuses it. Subclasses fetch it with their vendor's library (`_request`)."""

    provider = "generic"

    def __init__(self, *, endpoint: str, timeout: float = 20.0):
        self.endpoint, self.timeout = endpoint, timeout
        self._lock = threading.Lock()
        self._cached: _Token | None = None
        self.fetches = 0  # how many tokens this source fetched (for tests and `keepwarm check`)

    def token(self) -> str:
        """A valid access token: the cached one, else a fresh one."""
        with self._lock:
            if self._cached is None or time.monotonic() >= self._cached.refresh_at:
                self._cached = self._fetch()
            return self._cached.value

    def expires_in(self) -> float | None:
        """Seconds the cached token has left before it is renewed (None without one)."""
        cached = self._cached
        return None if cached is None else max(cached.refresh_at - time.monotonic(), 0.0)

    def invalidate(self, token: str) -> None:
        """A server refused `token`: the next `token()` fetches another (unless another thread already did)."""
        with self._lock:
            if self._cached is not None and self._cached.value == token:
                self._cached = None

    def where(self) -> str:
        return _where(self.endpoint)

    def _fetch(self) -> _Token:
        value, lifetime = self._request()
        if not value:
            raise TokenError(f"no OAuth2 token from {self.where()}: the answer has no access_token")
        lifetime = lifetime if lifetime and lifetime > 0 else DEFAULT_LIFETIME
        self.fetches += 1
        logger.info("oauth2: new access token from %s (%s, valid %.0fs)", self.where(), self.provider, lifetime)
        ahead = min(lifetime * REFRESH_AHEAD_SHARE, REFRESH_AHEAD_MAX)
        return _Token(value, time.monotonic() + lifetime - ahead, lifetime)

    def _request(self) -> tuple[str | None, float | None]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _refused(self, error: str | None, description: str) -> TokenError:
        """The endpoint's refusal as one line naming the endpoint and the OAuth2 error, never a secret."""
        text = (description or "").strip().splitlines()[0] if (description or "").strip() else ""
        said = f"{error}: {text}" if error and text and not text.startswith(error) else (text or error or "refused")
        return TokenError(f"no OAuth2 token from {self.where()}: {said}", error=error,
                          hint=self._hint(error, text))

    def _hint(self, error: str | None, text: str) -> str | None:
        if error == "invalid_client" and "expired" in text.lower():
            return "the client secret has expired: make a new one in the app registration and put it in " \
                   "KEEPWARM_OAUTH_CLIENT_SECRET_FILE"
        if error in ("invalid_client", "unauthorized_client"):
            return "the token endpoint does not accept this client: check KEEPWARM_OAUTH_CLIENT_ID and the secret"
        if error == "invalid_grant":
            return "the refresh token was revoked or has expired: consent again and update " \
                   "KEEPWARM_OAUTH_REFRESH_TOKEN_FILE"
        if error == "invalid_scope":
            return "the endpoint refuses KEEPWARM_OAUTH_SCOPE"
        return None


class OAuth2TokenProvider(TokenSource):
    """Access tokens from a generic OAuth2 token endpoint (RFC 6749) through Authlib: the refresh-token grant (a
    user's consent, kept as a refresh token) or the client-credentials grant (the app's own access)."""

    def __init__(self, *, token_url: str, client_id: str, grant: str = "refresh_token",
                 client_secret: str | None = None, client_secret_file: Path | None = None, scope: str = "",
                 refresh_token: str | None = None, refresh_token_file: Path | None = None,
                 timeout: float = 20.0, settings: Settings | None = None):
        super().__init__(endpoint=token_url, timeout=timeout)
        self.token_url, self.client_id, self.grant, self.scope = token_url, client_id, grant, scope
        self._client_secret, self._client_secret_file = client_secret, client_secret_file
        self._refresh_token, self._refresh_token_file = refresh_token, refresh_token_file
        self._settings = settings

    def _request(self) -> tuple[str | None, float | None]:
        from authlib.common.errors import AuthlibBaseError
        from requests import RequestException

        try:
            answer = self._answer()
        except AuthlibBaseError as error:
            raise self._refused(getattr(error, "error", None), getattr(error, "description", None) or
                                str(error)) from None
        except (RequestException, ValueError) as error:
            raise TokenError(f"no OAuth2 token from {self.where()}: {error}") from None
        if answer.get("refresh_token"):  # some providers (Microsoft) rotate it: the newest one is kept in memory
            self._refresh_token = answer["refresh_token"]
        return answer.get("access_token"), float(answer.get("expires_in") or 0)

    def _answer(self) -> dict:
        from authlib.integrations.requests_client import OAuth2Session

        secret = _secret(self._client_secret, self._client_secret_file)
        session = OAuth2Session(self.client_id, secret, scope=self.scope or None,
                                token_endpoint_auth_method="client_secret_post" if secret else "none")
        if self._settings is not None:  # the mail's TLS policy (KEEPWARM_CA_FILE) for an https endpoint
            for prefix, adapter in http_session(self._settings, self.timeout).adapters.items():
                session.mount(prefix, adapter)
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


class MicrosoftTokenProvider(TokenSource):
    """Microsoft 365 app-only tokens (client credentials) through MSAL's ConfidentialClientApplication. The
    authority is https://login.microsoftonline.com/<tenant> (or any https authority serving the same OpenID
    metadata: MSAL fetches <authority>/v2.0/.well-known/openid-configuration before the first token)."""

    provider = "microsoft"

    def __init__(self, *, authority: str, client_id: str, client_secret: str | None = None,
                 client_secret_file: Path | None = None, scope: str = "", settings: Settings,
                 timeout: float = 20.0):
        super().__init__(endpoint=authority, timeout=timeout)
        self.authority, self.client_id = authority.rstrip("/"), client_id
        self.scopes = (scope or MICROSOFT_SCOPE).split()
        self._client_secret, self._client_secret_file = client_secret, client_secret_file
        self._settings = settings
        self._app = None
        self._app_secret: str | None = None

    def _application(self):
        """The MSAL app, made again when the secret file changed (a rotated secret needs no restart)."""
        import msal

        secret = _secret(self._client_secret, self._client_secret_file)
        if self._app is None or secret != self._app_secret:
            # instance_discovery=False: MSAL asks login.microsoftonline.com about any other authority host; the
            # tenant's OpenID metadata is still fetched from the authority and checked.
            self._app = msal.ConfidentialClientApplication(
                self.client_id, client_credential=secret, authority=self.authority, instance_discovery=False,
                http_client=http_session(self._settings, self.timeout), token_cache=msal.TokenCache())
            self._app_secret = secret
        return self._app

    def _request(self) -> tuple[str | None, float | None]:
        from requests import RequestException

        try:
            app = self._application()
            # Keepwarm's cache decides when a token is due; MSAL's own would hand back the one just refused.
            for cached in list(app.token_cache.search(app.token_cache.CredentialType.ACCESS_TOKEN)):
                app.token_cache.remove_at(cached)
            answer = app.acquire_token_for_client(scopes=self.scopes)
        except (RequestException, ValueError) as error:
            self._app = None  # the authority's metadata is fetched again next time
            raise TokenError(f"no OAuth2 token from {self.where()}: {(str(error).splitlines() or [''])[0]}") \
                from None
        if not answer or "access_token" not in answer:
            answer = answer or {}
            raise self._refused(answer.get("error"), answer.get("error_description") or "")
        return answer["access_token"], float(answer.get("expires_in") or 0)

    def _hint(self, error: str | None, text: str) -> str | None:
        if error == "invalid_client" and "expired" in text.lower():
            return "the client secret has expired: add a new one under Certificates & secrets of the app " \
                   "registration and put it in KEEPWARM_OAUTH_CLIENT_SECRET_FILE"
        if error in ("invalid_client", "unauthorized_client"):
            return "Microsoft Entra does not accept this client id and secret: check KEEPWARM_OAUTH_CLIENT_ID " \
                   "and KEEPWARM_OAUTH_CLIENT_SECRET_FILE against the app registration"
        if error == "invalid_request" and "tenant" in text.lower():
            return "check the tenant in KEEPWARM_OAUTH_AUTHORITY"
        return super()._hint(error, text)


class GoogleTokenProvider(TokenSource):
    """Google Workspace: a service account's key signs a JWT asking for `subject`'s mail (domain-wide delegation),
    through google-auth. The token endpoint is the key file's token_uri."""

    provider = "google"

    def __init__(self, *, key_file: Path, subject: str, scope: str = "", settings: Settings,
                 timeout: float = 20.0):
        super().__init__(endpoint="", timeout=timeout)
        self.key_file, self.subject = Path(key_file), subject
        self.scopes = (scope or GOOGLE_SCOPE).split()
        self._settings = settings

    def where(self) -> str:
        return _where(self.endpoint) if self.endpoint else str(self.key_file)

    def _request(self) -> tuple[str | None, float | None]:
        from google.auth import exceptions
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account

        try:  # read at each fetch: a new key in the same file needs no restart
            credentials = service_account.Credentials.from_service_account_file(
                str(self.key_file), scopes=self.scopes, subject=self.subject)
        except (OSError, ValueError, KeyError) as error:
            raise TokenError(f"the service account key {self.key_file} cannot be used: "
                             f"{type(error).__name__}: {error}",
                             hint="download a JSON key of the service account into "
                                  "KEEPWARM_OAUTH_SERVICE_ACCOUNT_FILE") from None
        self.endpoint = credentials._token_uri
        try:
            credentials.refresh(Request(session=http_session(self._settings, self.timeout)))
        except exceptions.RefreshError as error:
            body = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], dict) else {}
            first = str(error.args[0]) if error.args else ""
            raise self._refused(body.get("error") or first.split(":")[0] or None,
                                body.get("error_description") or first) from None
        except exceptions.TransportError as error:
            raise TokenError(f"no OAuth2 token from {self.where()}: {(str(error).splitlines() or [''])[0]}") \
                from None
        lifetime = None
        if credentials.expiry is not None:
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            lifetime = (credentials.expiry - now).total_seconds()
        return credentials.token, lifetime

    def _hint(self, error: str | None, text: str) -> str | None:
        if error == "unauthorized_client":
            return "domain-wide delegation is not granted: in the Admin console (Security → API controls → " \
                   "Domain-wide delegation) add the service account's client id with https://mail.google.com/"
        if error == "invalid_grant" and ("signature" in text.lower() or "expired" in text.lower()):
            return "the service account key was deleted or has expired: make a new JSON key and put it in " \
                   "KEEPWARM_OAUTH_SERVICE_ACCOUNT_FILE"
        if error == "invalid_grant":
            return f"Google refuses the mailbox {self.subject}: is it a user of the Workspace domain, and the " \
                   "key the service account's?"
        return super()._hint(error, text)


def _secret(value: str | None, path: Path | None) -> str | None:
    if path is not None:
        return path.read_text().strip() or None
    return value


def _where(url: str) -> str:
    """The endpoint without its query (never a secret in a log line)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


_providers: dict[tuple, TokenSource] = {}
_providers_lock = threading.Lock()


def token_provider(settings: Settings, user: str | None = None) -> TokenSource:
    """The process's token source for these OAuth settings: IMAP and SMTP, and every sender thread, share its
    token. `user` is the login (the mailbox): Google's tokens are per mailbox, the others' are not."""
    provider = settings.oauth_provider
    if provider == "microsoft":
        values = dict(authority=settings.oauth_authority or "", client_id=settings.oauth_client_id,
                      client_secret=settings.oauth_client_secret,
                      client_secret_file=settings.oauth_client_secret_file, scope=settings.oauth_scope)
        kind = MicrosoftTokenProvider
    elif provider == "google":
        values = dict(key_file=settings.oauth_service_account_file, subject=user or "", scope=settings.oauth_scope)
        kind = GoogleTokenProvider
    else:
        values = dict(token_url=settings.oauth_token_url or "", client_id=settings.oauth_client_id,
                      grant=settings.oauth_grant, client_secret=settings.oauth_client_secret,
                      client_secret_file=settings.oauth_client_secret_file, scope=settings.oauth_scope,
                      refresh_token=settings.oauth_refresh_token,
                      refresh_token_file=settings.oauth_refresh_token_file)
        kind = OAuth2TokenProvider
    key = (provider, *values.values(), settings.ca_file)
    with _providers_lock:
        if key not in _providers:
            _providers[key] = kind(**values, settings=settings)
        return _providers[key]
