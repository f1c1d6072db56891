"""The one part of the OAuth2 tests that cannot be real: the identity provider. A small HTTPS token endpoint (RFC
6749) speaking enough of Microsoft Entra's and Google's dialects for MSAL, google-auth and Authlib to run their own
code against it, issuing RS256 JWTs that the mail servers of the tests check for themselves:

- Microsoft: `/{tenant}/v2.0/.well-known/openid-configuration` (what MSAL reads before its first token) and
  `/{tenant}/oauth2/v2.0/token` (client credentials, refresh token);
- Google and generic: `/token` (client credentials, refresh token, and the JWT-bearer grant of RFC 7523 that a
  service account's signed assertion uses; the assertion is verified with the service account's public key).

A Microsoft app-only token names no mailbox: Exchange Online checks the service principal's mailbox permission
(Add-MailboxPermission). Here the app is registered with the one mailbox it was given, and the token carries it as
`email`, which Dovecot's oauth2 passdb and the test relay compare with the login.

Also here: Dovecot with an oauth2 passdb validating those JWTs locally (keys written where its dict finds them),
and an aiosmtpd handler whose AUTH XOAUTH2 verifies them.
"""

from __future__ import annotations

import base64
import collections
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import jwt
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.run.devstack import DovecotServer
from service.run.devstack.servers import free_port
from service.run.devstack.smtp import _Handler
from tests.local_servers import JsonRequest, JsonServer
from tests.private_ca import PrivateCA

MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@dataclass
class App:
    """An app registration: its secret, the one mailbox it was given, whether its secret has expired."""
    secret: str
    mailbox: str
    expired: bool = False


@dataclass
class ServiceAccount:
    """A Google service account: its key (the test writes the JSON key file), and the mailboxes of the domain
    whose mail domain-wide delegation lets it read."""
    client_email: str
    client_id: str
    key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)
    key_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    delegated_domain: str = ""
    key_deleted: bool = False


class TokenServer:
    def __init__(self, ca: PrivateCA, *, tenant: str = "11111111-2222-3333-4444-555555555555",
                 lifetime: float = 3600):
        self.tenant, self.ca_file = tenant, ca.ca_file
        self.lifetime = lifetime  # what expires_in says
        self.jwt_lifetime: float | None = None  # when set, the JWT's exp comes this much sooner than said
        self.signing_key, self.kid = new_rsa_key(), "keepwarm-test-key-1"
        self.forger_key = new_rsa_key()  # the same kid, another key: what a forger would sign with
        self.forge = False
        self.apps: dict[str, App] = {}
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client id, user)
        self.requests: list[dict[str, str]] = []  # every token request's form (the tests look at grants)
        self.issued: list[dict] = []  # claims of every token issued
        self.metadata_reads = 0
        self._serial = itertools.count(1)
        self.endpoint = JsonServer(self._answer, tls=ca.server_context())
        self.base = self.endpoint.url

    def close(self) -> None:
        self.endpoint.close()

    # -- what the tests configure ---------------------------------------------------------------------
    @property
    def authority(self) -> str:
        """Microsoft's KEEPWARM_OAUTH_AUTHORITY: https://login.microsoftonline.com/<tenant>, here."""
        return f"{self.base}/{self.tenant}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    def register_app(self, client_id: str, secret: str, mailbox: str) -> App:
        self.apps[client_id] = App(secret, mailbox)
        return self.apps[client_id]

    def register_service_account(self, client_email: str, client_id: str, domain: str) -> ServiceAccount:
        account = ServiceAccount(client_email, client_id, delegated_domain=domain)
        self.service_accounts[client_email] = account
        return account

    def key_file(self, account: ServiceAccount, path: Path, *, key: rsa.RSAPrivateKey | None = None) -> Path:
        """The JSON key Google's console downloads, with this server as token_uri."""
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "keepwarm-test", "private_key_id": account.key_id,
            "private_key": private_pem(key or account.key), "client_email": account.client_email,
            "client_id": account.client_id, "token_uri": self.token_url,
            "auth_uri": f"{self.base}/o/oauth2/auth"}))
        return path

    def write_dovecot_keys(self, folder: Path) -> None:
        """The public key as Dovecot's local validation looks it up: <dict prefix><azp>/<alg>/<kid>."""
        azps = {*self.apps, *(a.client_id for a in self.service_accounts.values()), "default"}
        for azp in azps:
            path = folder / _dovecot_escape(azp) / "RS256" / _dovecot_escape(self.kid)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(public_pem(self.signing_key))
            path.chmod(0o644)
        for directory in [folder, *folder.rglob("*")]:
            if directory.is_dir():
                directory.chmod(0o755)

    def verify(self, token: str) -> dict | None:
        """The claims of a token this server signed and that has not lapsed, else None (what the relay does)."""
        try:
            return jwt.decode(token, self.signing_key.public_key(), algorithms=["RS256"],
                              options={"verify_aud": False})
        except jwt.PyJWTError:
            return None

    # -- the endpoint ---------------------------------------------------------------------------------
    def _answer(self, request: JsonRequest) -> tuple[int, dict]:
        """GET for the metadata; POST with the client's credentials in the form or in HTTP Basic."""
        if request.method == "GET":
            return self.get(request.path)
        form = request.form()
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(user))
            form.setdefault("client_secret", unquote(password))
        return self.post(request.path.split("?")[0], form)

    def get(self, path: str) -> tuple[int, dict]:
        if path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            self.metadata_reads += 1
            return 200, {"issuer": f"{self.authority}/v2.0",
                         "token_endpoint": f"{self.authority}/oauth2/v2.0/token",
                         "authorization_endpoint": f"{self.authority}/oauth2/v2.0/authorize",
                         "jwks_uri": f"{self.base}/{self.tenant}/discovery/v2.0/keys",
                         "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                         "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
                         "id_token_signing_alg_values_supported": ["RS256"]}
        if path.endswith("/.well-known/openid-configuration"):
            return 400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."}
        return 404, {"error": "not_found"}

    def post(self, path: str, form: dict[str, str]) -> tuple[int, dict]:
        self.requests.append(form)
        if path not in (f"/{self.tenant}/oauth2/v2.0/token", "/token"):
            return 404, {"error": "not_found"}
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form)
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return 400, {"error": "unauthorized_client",
                         "error_description": f"AADSTS700016: Application with identifier "
                                              f"'{form.get('client_id')}' was not found in the directory."}
        if form.get("client_secret") != app.secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret "
                                                                         "provided."}
        if app.expired:
            return 401, {"error": "invalid_client",
                         "error_description": f"AADSTS7000222: The provided client secret keys for app "
                                              f"'{form['client_id']}' are expired."}
        if grant == "client_credentials":
            return 200, self._issue(form["client_id"], app.mailbox, form.get("scope", ""))
        if grant == "refresh_token":
            owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if owner is None or owner[0] != form["client_id"]:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: The provided "
                                                                            "refresh token has expired or was revoked."}
            return 200, self._issue(form["client_id"], owner[1], form.get("scope", ""))
        return 400, {"error": "unsupported_grant_type"}

    def _jwt_bearer(self, form: dict[str, str]) -> tuple[int, dict]:
        """Google's service-account grant: the assertion is a JWT the account signed with its key."""
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}
        account = self.service_accounts.get(unverified.get("iss", ""))
        if account is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"}
        try:
            # google-auth addresses every assertion to Google's token URL, whatever the key file's token_uri
            claims = jwt.decode(assertion, account.key.public_key(), algorithms=["RS256"],
                                audience=[GOOGLE_TOKEN_AUDIENCE, self.token_url])
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if account.key_deleted or jwt.get_unverified_header(assertion).get("kid") != account.key_id:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject = claims.get("sub", "")
        if GOOGLE_SCOPE not in claims.get("scope", "").split() or \
                not subject.endswith("@" + account.delegated_domain):
            return 401, {"error": "unauthorized_client",
                         "error_description": "Client is unauthorized to retrieve access tokens using this method, "
                                              "or client not authorized for any of the scopes requested."}
        return 200, self._issue(account.client_id, subject, claims["scope"])

    def _issue(self, client_id: str, mailbox: str, scope: str) -> dict:
        now = int(time.time())
        lasts = self.jwt_lifetime if self.jwt_lifetime is not None else self.lifetime
        # Issued and valid from a second back, as identity providers allow for clock skew (Microsoft's from minutes
        # back): Dovecot compares with time(2), the kernel's coarse clock, which can lag the clock Python reads by a
        # tick, so a token issued just after a second turned and presented within milliseconds was "issued in
        # future", refused, and renewed (a second fetch, seen once in a full run on a loaded machine).
        claims = {"iss": f"{self.authority}/v2.0", "aud": "https://outlook.office365.com", "sub": f"sp-{client_id}",
                  "azp": client_id, "email": mailbox, "scope": scope, "iat": now - 1, "nbf": now - 1,
                  "exp": now + int(lasts), "jti": f"t{next(self._serial)}"}
        key = self.forger_key if self.forge else self.signing_key
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
        self.issued.append(claims)
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self.lifetime),
                "ext_expires_in": int(self.lifetime)}


def _dovecot_escape(identifier: str) -> str:
    return identifier.replace("%", "%25").replace("/", "%2f")


class JwtRelay(_Handler):
    """The mail catcher's handler with an AUTH XOAUTH2 that takes only live tokens the server signed for the
    login's mailbox (as Exchange Online and Gmail do)."""

    def __init__(self, server: TokenServer):
        super().__init__(None)
        self.token_server = server
        self.logins: list[tuple[str, str, bool]] = []  # (user, token's jti or "?", accepted)
        self.refused: set[str] = set()  # jti of tokens revoked early: refused though they have not lapsed

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 - aiosmtpd finds mechanisms by this name
        text = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        claims = self.token_server.verify(token)
        accepted = claims is not None and claims.get("email") == user and claims.get("jti") not in self.refused
        self.logins.append((user, (claims or {}).get("jti", "?"), accepted))
        return AuthResult(success=accepted, handled=False)


class _LongAuthSMTP(SMTP):
    """A JWT makes a long AUTH line (Microsoft's tokens are 1.5 to 2.5 KB): RFC 4954 allows it 12288 octets, where
    aiosmtpd allows any command RFC 5321's 512."""

    command_size_limit = 12288
    line_length_limit = 12290

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # aiosmtpd's per-command limits are a class-wide dict defaulting to SMTP's own 512: one of our own
        self.command_size_limits = collections.defaultdict(lambda: self.command_size_limit)


class JwtRelayController(Controller):
    """aiosmtpd on 127.0.0.1 with a JwtRelay, AUTH required (plain text: loopback only)."""

    def __init__(self, server: TokenServer):
        self.relay = JwtRelay(server)
        super().__init__(self.relay, hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                         auth_required=True)

    def factory(self):
        return _LongAuthSMTP(self.handler, **self.SMTP_kwargs)


class OAuthDovecot(DovecotServer):
    """The devstack's Dovecot plus an oauth2 passdb for XOAUTH2 and OAUTHBEARER that validates JWTs locally
    (Dovecot 2.3's `introspection_mode = local`): no introspection endpoint, the token server's public key in a
    dict of files. Password logins (for the tests' APPENDs) still work."""

    name = "dovecot"

    def __init__(self, folder: Path, token_server: TokenServer, **kwargs):
        super().__init__(folder, **kwargs)
        self.token_server = token_server

    def _write_config(self) -> Path:
        config = super()._write_config()
        keys = self.folder / "oauth2-keys"
        self.token_server.write_dovecot_keys(keys)
        oauth = self.folder / "dovecot-oauth2.conf.ext"
        oauth.write_text(f"introspection_mode = local\n"
                         f"local_validation_key_dict = fs:posix:prefix={keys}/\n"
                         f"username_attribute = email\n"
                         f"issuers = {self.token_server.authority}/v2.0\n")
        oauth.chmod(0o644)
        text = config.read_text()
        text, mechanisms = re.subn(r"(?m)^auth_mechanisms = plain login$",
                                   "auth_mechanisms = plain login xoauth2 oauthbearer\n"
                                   "auth_verbose = yes\nauth_verbose_passwords = no\n"
                                   # the tests refuse tokens on purpose: no 2 s delay after each, and no
                                   # growing penalty for 127.0.0.1 (Dovecot's documented way: anvil's
                                   # auth-penalty socket unusable)
                                   "auth_failure_delay = 0\n"
                                   "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}",
                                   text)
        text, passdbs = re.subn(r"passdb \{\n  driver = passwd-file\n",
                                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                                f"  args = {oauth}\n}}\npassdb {{\n  driver = passwd-file\n"
                                "  mechanisms = plain login\n", text)
        assert mechanisms == passdbs == 1, "the devstack's dovecot.conf changed: update OAuthDovecot"
        config.write_text(text)
        return config

    def auth_log(self) -> str:
        path = self.folder / "dovecot-mail.log"
        return path.read_text(errors="replace") if path.exists() else ""
