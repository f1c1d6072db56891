"""XOAUTH2 logins with the generic provider (Authlib) and opaque tokens from a plain-HTTP token endpoint
(http.server in a thread, short-lived tokens): SMTP against aiosmtpd checking the bearer token; IMAP up to the
client call. The vendors' libraries (MSAL, google-auth), JWTs, HTTPS endpoints and a Dovecot that validates the
tokens itself are in test_mail_oauth_providers.py.
"""

from __future__ import annotations

import base64
import itertools
import logging
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from imapclient.exceptions import LoginError

from service.intake import imap as imap_module
from service.mailauth import OAuth2TokenProvider, TokenError
from service.outbox.compose import Outgoing
from service.outbox.transport import PermanentSendError, SmtpTransport, TransientSendError
from service.run.devstack.servers import free_port
from service.run.devstack.smtp import _Handler
from service.settings import SettingsError, load_settings
from tests.local_servers import JsonRequest, JsonServer

CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN = "keepwarm-app", "app-secret-value", "refresh-token-value"
USER = "followup@acme.example"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class TokenEndpoint:
    """Issues `tok-N` tokens valid `lifetime` seconds for the right client and refresh token; remembers them."""

    def __init__(self, lifetime: float = 3600):
        self.lifetime = lifetime
        self.issued: dict[str, float] = {}  # token -> when it lapses (time.monotonic())
        self.requests: list[dict[str, str]] = []
        self._numbers = itertools.count(1)
        self.server = JsonServer(self.answer)
        self.url = f"{self.server.url}/oauth2/token"

    def answer(self, request: JsonRequest) -> tuple[int, dict]:
        form = request.form()
        self.requests.append(form)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") != REFRESH_TOKEN or \
                grant not in ("refresh_token", "client_credentials"):
            return 400, {"error": "invalid_grant", "error_description": "the refresh token is not valid"}
        token = f"tok-{next(self._numbers)}"
        self.issued[token] = time.monotonic() + self.lifetime
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def valid(self, token: str) -> bool:
        return self.issued.get(token, 0) > time.monotonic()

    def revoke_all(self) -> None:
        self.issued.clear()


class XOAuth2Relay(_Handler):
    """The mail catcher's handler with an AUTH XOAUTH2 that accepts only live tokens of the endpoint."""

    def __init__(self, endpoint: TokenEndpoint):
        super().__init__(None)
        self.endpoint = endpoint
        self.logins: list[tuple[str, str]] = []

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 - aiosmtpd finds mechanisms by this name
        text = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        self.logins.append((user, token))
        return AuthResult(success=user == USER and self.endpoint.valid(token), handled=False)


@pytest.fixture
def endpoint():
    endpoint = TokenEndpoint()
    yield endpoint
    endpoint.server.close()


@pytest.fixture
def relay(endpoint):
    handler = XOAuth2Relay(endpoint)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                            auth_required=True)
    controller.start()
    yield handler, controller.port
    controller.stop()


def _settings(endpoint, port: int, **values):
    return load_settings({"smtp_url": f"smtp://{USER.replace('@', '%40')}@127.0.0.1:{port}", "smtp_auth": "xoauth2",
                          "imap_auth": "xoauth2", "oauth_token_url": endpoint.url, "oauth_client_id": CLIENT_ID,
                          "oauth_client_secret": CLIENT_SECRET, "oauth_refresh_token": REFRESH_TOKEN, **values},
                         environ={}, env_file=None)


def _send(settings) -> None:
    transport = SmtpTransport(settings.smtp(), timeout=10, settings=settings)
    try:
        transport.send(Outgoing(sender=USER, data=b"Subject: hi\r\n\r\nHello\r\n"), "jane@globex.example")
    finally:
        transport.close()


def test_smtp_logs_in_with_a_token_and_reuses_it_while_it_is_valid(endpoint, relay):
    handler, port = relay
    settings = _settings(endpoint, port, oauth_scope="https://outlook.office365.com/.default")
    _send(settings)
    _send(settings)
    assert len(handler.caught) == 2 and [t for _, t in handler.logins] == ["tok-1", "tok-1"]
    assert [r["grant_type"] for r in endpoint.requests] == ["refresh_token"]
    assert endpoint.requests[0]["scope"] == "https://outlook.office365.com/.default"


def test_a_token_is_renewed_before_it_lapses(endpoint, relay):
    handler, port = relay
    endpoint.lifetime = 2  # renewed when a quarter of its life is left: after 1.5 s
    settings = _settings(endpoint, port, oauth_grant="client_credentials")
    _send(settings)
    time.sleep(1.6)
    _send(settings)
    assert [t for _, t in handler.logins] == ["tok-1", "tok-2"]
    assert [r["grant_type"] for r in endpoint.requests] == ["client_credentials"] * 2


def test_a_refused_token_is_renewed_once_and_the_login_retried(endpoint, relay):
    handler, port = relay
    settings = _settings(endpoint, port)
    _send(settings)
    endpoint.revoke_all()  # the server no longer takes tok-1 though it has not lapsed
    _send(settings)
    assert [t for _, t in handler.logins] == ["tok-1", "tok-1", "tok-2"] and len(handler.caught) == 2


def test_a_login_still_refused_with_a_fresh_token_is_an_auth_failure(endpoint, relay):
    handler, port = relay
    settings = _settings(endpoint, port, smtp_url=f"smtp://someone%40else.example@127.0.0.1:{port}")
    with pytest.raises(PermanentSendError) as refused:
        _send(settings)
    assert refused.value.stage == "auth" and len(handler.logins) == 2 and handler.caught == []
    assert "OAuth2 token" in str(refused.value) and "password" not in str(refused.value)


def test_a_token_endpoint_refusal_is_transient_and_no_secret_is_logged(endpoint, relay, tmp_path, caplog):
    handler, port = relay
    secret_file = tmp_path / "refresh-token"
    secret_file.write_text("a-revoked-refresh-token\n")
    settings = _settings(endpoint, port, oauth_refresh_token=None, oauth_refresh_token_file=str(secret_file))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientSendError, match="invalid_grant") as failed:
        _send(settings)
    assert endpoint.requests[0]["refresh_token"] == "a-revoked-refresh-token"  # read from the file
    everything = caplog.text + str(failed.value) + repr(settings)
    assert "a-revoked-refresh-token" not in everything and CLIENT_SECRET not in everything
    assert handler.logins == []


def test_the_token_endpoint_down_is_a_token_error(endpoint):
    provider = OAuth2TokenProvider(token_url=f"http://127.0.0.1:{free_port()}/token", client_id=CLIENT_ID,
                                   grant="client_credentials", client_secret=CLIENT_SECRET, timeout=2)
    with pytest.raises(TokenError, match="no OAuth2 token"):
        provider.token()


def test_xoauth2_settings_name_what_is_missing():
    with pytest.raises(SettingsError, match="KEEPWARM_OAUTH_TOKEN_URL.*KEEPWARM_OAUTH_REFRESH_TOKEN"):
        load_settings({"smtp_auth": "xoauth2", "oauth_client_id": "x"}, environ={}, env_file=None)


class _RecordingImapClient:
    """Stands in for IMAPClient at the one call XOAUTH2 changes; refuses the tokens in `refused`."""

    def __init__(self, refused: set[str]):
        self.refused, self.calls = refused, []

    def oauth2_login(self, user: str, token: str):
        self.calls.append((user, token))
        if token in self.refused:
            raise LoginError("AUTHENTICATE failed")


def test_imap_xoauth2_renews_a_refused_token_once_up_to_the_client_call(endpoint):
    settings = _settings(endpoint, 25, imap_url=f"imaps://{USER.replace('@', '%40')}@127.0.0.1/INBOX")
    client = _RecordingImapClient(refused={"tok-1"})
    imap_module._log_in(client, settings.imap(), settings)
    assert client.calls == [(USER, "tok-1"), (USER, "tok-2")]
