"""XOAUTH2 with the vendors' own libraries, checked by real servers: MSAL (Microsoft 365 app-only), google-auth (a
Google Workspace service account with domain-wide delegation) and Authlib (generic) each fetch their tokens from a
local HTTPS token endpoint (tests/oauth_server.py, over TLS checked with KEEPWARM_CA_FILE), and the tokens they get
are JWTs that Dovecot 2.3 validates itself (an oauth2 passdb, `introspection_mode = local`: signature, expiry,
issuer, mailbox) and that the test relay verifies the same way.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from imapclient.exceptions import LoginError
from sqlmodel import Session, select

from service import create_app
from service.intake.imap import NETWORK_ERRORS, PROCESSED
from service.mailauth import TokenError, token_provider
from service.metrics import mailbox_health
from service.models import InboundMessage
from service.outbox.compose import Outgoing
from service.outbox.transport import SmtpTransport
from service.pipeline.polling import poller
from service.run.devstack.servers import dovecot_binary
from service.settings import SettingsError, load_settings
from tests.local_servers import imaps_login, keepwarm_check
from tests.mail import recap, wait_until
from tests.oauth_server import JwtRelayController, OAuthDovecot, TokenServer
from tests.private_ca import make_private_ca

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
USERS = {f"oauth{n}@acme.example": "secret" for n in range(1, 31)}
_free_users = iter(USERS)
PROVIDERS = ["microsoft", "google", "generic"]


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    return make_private_ca(tmp_path_factory.mktemp("oauth-ca"))


@pytest.fixture(scope="module")
def token_server(private_ca):
    server = TokenServer(private_ca)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_token_server(token_server):
    """Each test starts with an endpoint that signs honestly and says the truth about lifetimes."""
    token_server.lifetime, token_server.jwt_lifetime, token_server.forge = 3600, None, False
    yield


@pytest.fixture(scope="module")
def oauth_dovecot(token_server, private_ca):
    """Dovecot with `ssl = required` (our CA's certificate) and an oauth2 passdb trusting the token server's key."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (make install as root installs dovecot-imapd)")
    folder = Path(tempfile.mkdtemp(prefix="kw-dovecot-oauth-"))  # not under pytest's 0700 root: see conftest
    try:
        with OAuthDovecot(folder, token_server, users=USERS,
                          tls=(private_ca.certificate, private_ca.key)) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def relay(token_server):
    controller = JwtRelayController(token_server)
    controller.start()
    yield controller.relay, controller.port
    controller.stop()


class Account:
    """One mailbox and the credential of each provider for it, registered at the token server."""

    def __init__(self, server: TokenServer, folder: Path, user: str):
        self.server, self.user, self.number = server, user, user.split("@")[0].removeprefix("oauth")
        self.client_id, self.secret = f"keepwarm-app-{self.number}", f"app-secret-{self.number}-value"
        self.app = server.register_app(self.client_id, self.secret, user)
        self.refresh_token = f"refresh-token-{self.number}-value"
        server.refresh_tokens[self.refresh_token] = (self.client_id, user)
        self.service_account = server.register_service_account(
            f"keepwarm-{self.number}@keepwarm-test.iam.gserviceaccount.com", f"10{self.number:0>8}", "acme.example")
        self.key_file = server.key_file(self.service_account, folder / f"sa-{self.number}.json")
        self.secret_file = folder / f"secret-{self.number}"
        self.secret_file.write_text(self.secret + "\n")

    def values(self, provider: str) -> dict:
        """The KEEPWARM_OAUTH_* settings of `provider` (typed, for load_settings or with_overrides)."""
        if provider == "microsoft":
            return {"oauth_provider": "microsoft", "oauth_authority": self.server.authority,
                    "oauth_client_id": self.client_id, "oauth_client_secret_file": self.secret_file}
        if provider == "google":
            return {"oauth_provider": "google", "oauth_service_account_file": self.key_file}
        return {"oauth_provider": "generic", "oauth_token_url": self.server.token_url,
                "oauth_client_id": self.client_id, "oauth_client_secret_file": self.secret_file,
                "oauth_grant": "refresh_token", "oauth_refresh_token": self.refresh_token,
                "oauth_scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"}

    def secrets(self) -> list[str]:
        pem = self.key_file.read_text().split("PRIVATE KEY-----")[1][:200]
        return [self.secret, self.refresh_token, pem]


@pytest.fixture
def account(token_server, oauth_dovecot, tmp_path) -> Account:
    account = Account(token_server, tmp_path, next(_free_users))
    token_server.write_dovecot_keys(oauth_dovecot.folder / "oauth2-keys")  # the new app's azp
    return account


@pytest.fixture
def smtp_account(token_server, tmp_path) -> Account:
    """An account for the relay alone: no Dovecot needed."""
    return Account(token_server, tmp_path, next(_free_users))


def _imap_url(user: str, port: int) -> str:
    return f"imaps://{user.replace('@', '%40')}@127.0.0.1:{port}/INBOX"


def _append(dovecot, ca, user: str, *messages: bytes) -> None:
    with imaps_login(dovecot.imaps_port, ca, user, USERS[user]) as client:
        for message in messages:
            client.append("INBOX", message)


def _counts(dovecot, ca, user: str) -> dict[str, int]:
    with imaps_login(dovecot.imaps_port, ca, user, USERS[user]) as client:
        return {folder: client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] if client.folder_exists(folder) else 0
                for folder in ("INBOX", PROCESSED)}


def _mail_settings(settings, account: Account, provider: str, dovecot, ca, **values):
    return settings.with_overrides(**{"imap_url": _imap_url(account.user, dovecot.imaps_port), "imap_auth": "xoauth2",
                                      "ca_file": ca.ca_file, **account.values(provider), **values})


def _send(settings) -> None:
    transport = SmtpTransport(settings.smtp(), timeout=10, settings=settings)
    try:
        transport.send(Outgoing(sender=settings.smtp().username, data=b"Subject: hi\r\n\r\nHello\r\n"),
                       "jane@globex.example")
    finally:
        transport.close()


def _grants(server: TokenServer, since: int = 0) -> list[str]:
    return [form.get("grant_type", "") for form in server.requests[since:]]


# -- the poller reads with XOAUTH2, for real ------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_poller_reads_over_imaps_with_xoauth2_and_the_relay_takes_the_same_token(
        provider, token_server, oauth_dovecot, private_ca, account, relay, settings, engine, reps, redis):
    handler, port = relay
    _append(oauth_dovecot, private_ca, account.user, recap(1))
    mail = _mail_settings(settings, account, provider, oauth_dovecot, private_ca, smtp_auth="xoauth2",
                          smtp_url=f"smtp://{account.user.replace('@', '%40')}@127.0.0.1:{port}")
    before = len(token_server.requests)
    mailbox = poller(mail, engine)
    try:
        stats = mailbox.poll_once()
    finally:
        mailbox.close()
    assert (stats.fetched, stats.moved) == (1, 1)
    _send(mail)
    _send(mail)
    assert len(handler.caught) == 2 and all(accepted for _, _, accepted in handler.logins)
    assert set(_grants(token_server, before)) == {{"microsoft": "client_credentials", "google":
                                                  "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                  "generic": "refresh_token"}[provider]}
    # One token for the poll and both sends, cached. Counted where Keepwarm obtains it, not in the token server's
    # requests: google-auth retries a token request itself when the transport hiccups (once seen on a loaded run).
    assert token_provider(mail, account.user).fetches == 1
    assert f"user=<{account.user}>, method=XOAUTH2" in oauth_dovecot.auth_log()
    assert mailbox_health(mailbox.services, mailbox.key, max_age=timedelta(minutes=1)) \
        == "ok"


@pytest.mark.slow
def test_an_expired_token_is_refused_then_renewed_without_losing_or_doubling_mail(
        token_server, oauth_dovecot, private_ca, account, settings, engine, reps):
    token_server.jwt_lifetime = 1  # the token lapses a second after it was issued, though expires_in says an hour
    mail = _mail_settings(settings, account, "microsoft", oauth_dovecot, private_ca)
    _append(oauth_dovecot, private_ca, account.user, recap(1), recap(2))
    mailbox = poller(mail, engine)
    try:
        assert mailbox.poll_once().fetched == 2
        mailbox.close()  # the next pass logs in again with the cached token
        lapses = token_server.issued[-1]["exp"]
        token_server.jwt_lifetime = None
        _append(oauth_dovecot, private_ca, account.user, recap(3), recap(2))  # a new one, and a duplicate
        wait_until(lambda: time.time() >= lapses + 1.1, 5)  # Dovecot compares whole seconds of a coarser clock
        stats = mailbox.poll_once()
    finally:
        mailbox.close()
    assert "Token has expired" in oauth_dovecot.auth_log()
    assert stats.fetched == 2 and token_provider(mail, account.user).fetches == 2
    with Session(engine) as session:
        rows = session.exec(select(InboundMessage).where(InboundMessage.mailbox == mailbox.key)).all()
    assert sorted(r.message_id for r in rows if r.status == "processed") == \
        ["<recap-1@mail.acme.example>", "<recap-2@mail.acme.example>", "<recap-3@mail.acme.example>"]
    assert [r.reason for r in rows if r.status != "processed"] == ["duplicate"]  # read once, filed once
    assert _counts(oauth_dovecot, private_ca, account.user) == {"INBOX": 0, PROCESSED: 4}


def test_a_forged_token_is_refused_and_the_poller_says_so(token_server, oauth_dovecot, private_ca, account,
                                                          settings, engine, reps, redis):
    token_server.forge = True  # signed with another key under the trusted key's id
    mail = _mail_settings(settings, account, "google", oauth_dovecot, private_ca)
    _append(oauth_dovecot, private_ca, account.user, recap(1))
    mailbox = poller(mail, engine)
    with pytest.raises(LoginError):
        mailbox.poll_once()
    mailbox.close()
    assert token_provider(mail, account.user).fetches == 2  # renewed once, then given up
    assert "Local validation failed: Bad signature" in oauth_dovecot.auth_log()
    health = mailbox_health(mailbox.services, mailbox.key, max_age=timedelta(minutes=1))
    assert health.startswith("error: LoginError")
    assert _counts(oauth_dovecot, private_ca, account.user) == {"INBOX": 1, PROCESSED: 0}


def test_a_token_for_another_mailbox_is_refused(token_server, oauth_dovecot, private_ca, account, tmp_path,
                                                settings, engine):
    other = Account(token_server, tmp_path, next(_free_users))
    mail = _mail_settings(settings, other, "microsoft", oauth_dovecot, private_ca,
                          imap_url=_imap_url(account.user, oauth_dovecot.imaps_port))  # other's app, not given it
    mailbox = poller(mail, engine)
    with pytest.raises(LoginError):
        mailbox.poll_once()
    mailbox.close()


@pytest.mark.slow
def test_a_revoked_credential_shows_on_readyz_and_stops_nothing_else(
        token_server, oauth_dovecot, private_ca, account, settings, engine, reps, redis):
    token_server.lifetime = 2  # renewed after 1.5 s: the revocation shows at the next login
    mail = _mail_settings(settings, account, "microsoft", oauth_dovecot, private_ca)
    web = create_app(mail)
    web.config.update(TESTING=True)
    client = web.test_client()
    mailbox = poller(mail, engine)
    try:
        mailbox.poll_once()
        assert client.get("/readyz").json["checks"]["imap"] == "ok"
        account.secret_file.write_text("a-secret-nobody-issued\n")  # the admin deleted the app's secret
        account.app.secret = "the-new-secret-value"
        wait_until(lambda: token_provider(mail, account.user).expires_in() == 0, 10)
        mailbox.close()  # the session ends (servers drop them): the next pass logs in again
        with pytest.raises(TokenError) as refused:
            mailbox.poll_once()
        assert isinstance(refused.value, NETWORK_ERRORS)  # the poller's loop backs off and tries again
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"] == ready.json["checks"]["redis"] == "ok"
        assert "invalid_client: AADSTS7000215" in ready.json["checks"]["imap"]
        assert "a-secret-nobody" not in ready.get_data(True) and client.get("/healthz").status_code == 200
        account.secret_file.write_text("the-new-secret-value\n")  # the new secret, no restart
        _append(oauth_dovecot, private_ca, account.user, recap(1))
        assert mailbox.poll_once().fetched == 1
        assert client.get("/readyz").json["checks"]["imap"] == "ok"
    finally:
        mailbox.close()
    assert _counts(oauth_dovecot, private_ca, account.user) == {"INBOX": 0, PROCESSED: 1}


# -- SMTP with each provider -----------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_token_is_renewed_once_with_each_provider_and_no_secret_is_logged(
        provider, token_server, smtp_account, relay, caplog):
    handler, port = relay
    caplog.set_level(logging.DEBUG)
    mail = load_settings({"smtp_url": f"smtp://{smtp_account.user.replace('@', '%40')}@127.0.0.1:{port}",
                          "smtp_auth": "xoauth2", "ca_file": str(token_server.ca_file),
                          **smtp_account.values(provider)}, environ={}, env_file=None)
    _send(mail)
    first = handler.logins[-1][1]
    handler.refused.add(first)  # revoked early: the relay no longer takes it though it has not lapsed
    _send(mail)
    assert [(jti == first, ok) for _, jti, ok in handler.logins] == [(True, True), (True, False), (False, True)]
    assert len(handler.caught) == 2 and token_provider(mail, smtp_account.user).fetches == 2
    logged = caplog.text + repr(mail)
    tokens = [t for t in (token_provider(mail, smtp_account.user).token(),)]
    assert not [s for s in smtp_account.secrets() + tokens if s in logged]


# -- what the token endpoints' refusals say -------------------------------------------------------------------
def _source(token_server, account: Account, provider: str, **values):
    mail = load_settings({"smtp_url": f"smtp://{account.user.replace('@', '%40')}@127.0.0.1:25",
                          "smtp_auth": "xoauth2", "ca_file": str(token_server.ca_file), **account.values(provider),
                          **values}, environ={}, env_file=None)
    return token_provider(mail, account.user)


def test_a_deleted_service_account_key_is_named_with_what_to_do(token_server, smtp_account):
    smtp_account.service_account.key_deleted = True
    with pytest.raises(TokenError, match="invalid_grant: Invalid JWT Signature") as refused:
        _source(token_server, smtp_account, "google").token()
    assert "make a new JSON key" in refused.value.hint


def test_a_mailbox_outside_the_delegation_is_named_with_what_to_do(token_server, smtp_account):
    smtp_account.service_account.delegated_domain = "elsewhere.example"
    with pytest.raises(TokenError, match="unauthorized_client") as refused:
        _source(token_server, smtp_account, "google").token()
    assert "Domain-wide delegation" in refused.value.hint


def test_an_unknown_tenant_is_a_token_error(token_server, smtp_account):
    with pytest.raises(TokenError, match="no OAuth2 token from https://127.0.0.1"):
        _source(token_server, smtp_account, "microsoft",
                oauth_authority=f"{token_server.base}/no-such-tenant").token()


def test_the_token_endpoint_certificate_is_checked(token_server, smtp_account):
    """Without KEEPWARM_CA_FILE the private CA's endpoint is refused, by each library."""
    for provider in PROVIDERS:
        with pytest.raises(TokenError, match="CERTIFICATE_VERIFY_FAILED"):
            _source(token_server, smtp_account, provider, ca_file="").token()


def test_each_provider_names_what_is_missing():
    for provider, missing in (("microsoft", "KEEPWARM_OAUTH_AUTHORITY.*KEEPWARM_OAUTH_CLIENT_ID.*SECRET"),
                              ("google", "KEEPWARM_OAUTH_SERVICE_ACCOUNT_FILE")):
        with pytest.raises(SettingsError, match=missing):
            load_settings({"imap_auth": "xoauth2", "oauth_provider": provider}, environ={}, env_file=None)
    with pytest.raises(SettingsError, match="https://"):
        load_settings({"imap_auth": "xoauth2", "oauth_provider": "microsoft", "oauth_client_id": "x",
                       "oauth_client_secret": "y", "oauth_authority": "http://login.example/t"},
                      environ={}, env_file=None)


# -- keepwarm check ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_keepwarm_check_says_in_one_line_whether_the_credential_is_good_expired_or_wrong(
        tmp_path, token_server, oauth_dovecot, private_ca, account):
    _append(oauth_dovecot, private_ca, account.user, recap(1))
    variables = {"KEEPWARM_IMAP_URL": _imap_url(account.user, oauth_dovecot.imaps_port),
                 "KEEPWARM_IMAP_AUTH": "xoauth2", "KEEPWARM_CA_FILE": private_ca.ca_file,
                 "KEEPWARM_OAUTH_PROVIDER": "microsoft", "KEEPWARM_OAUTH_AUTHORITY": token_server.authority,
                 "KEEPWARM_OAUTH_CLIENT_ID": account.client_id,
                 "KEEPWARM_OAUTH_CLIENT_SECRET_FILE": account.secret_file}
    good = keepwarm_check(tmp_path, **variables)
    assert good.returncode == 0, good.stdout + good.stderr
    oauth, imap, smtp = good.stdout.splitlines()
    assert oauth.startswith(f"OAuth2: ok, microsoft token from {token_server.authority} for {account.user}")
    assert imap.startswith("IMAP: ok, imaps://") and "xoauth2 login" in imap and "1 message(s)" in imap
    assert smtp.startswith("SMTP: skipped")

    account.app.expired = True
    expired = keepwarm_check(tmp_path, **variables)
    account.app.expired = False
    assert expired.returncode == 1
    oauth, imap, _ = expired.stdout.splitlines()
    assert oauth.startswith("OAuth2: FAILED, TokenError: no OAuth2 token from") and "AADSTS7000222" in oauth
    assert "the client secret has expired: add a new one" in oauth
    assert imap == "IMAP: FAILED, no OAuth2 token (see the OAuth2 line)"

    wrong_secret = tmp_path / "wrong-secret"
    wrong_secret.write_text("not-the-secret\n")
    wrong = keepwarm_check(tmp_path, **{**variables, "KEEPWARM_OAUTH_CLIENT_SECRET_FILE": wrong_secret})
    assert wrong.returncode == 1
    oauth = wrong.stdout.splitlines()[0]
    assert "invalid_client: AADSTS7000215: Invalid client secret provided." in oauth
    assert "does not accept this client id and secret" in oauth

    other = Account(token_server, tmp_path, next(_free_users))  # an app without this mailbox
    token_server.write_dovecot_keys(oauth_dovecot.folder / "oauth2-keys")
    no_permission = keepwarm_check(tmp_path, **{**variables, "KEEPWARM_OAUTH_CLIENT_ID": other.client_id,
                                                "KEEPWARM_OAUTH_CLIENT_SECRET_FILE": other.secret_file})
    oauth, imap, _ = no_permission.stdout.splitlines()
    assert no_permission.returncode == 1 and oauth.startswith("OAuth2: ok")
    assert imap.startswith("IMAP: FAILED, LoginError:") and "Add-MailboxPermission" in imap
    everything = good.stdout + expired.stdout + wrong.stdout + no_permission.stdout
    assert account.secret not in everything and "not-the-secret" not in everything
