"""Typed settings from `KEEPWARM_*` environment variables and `.env`; tests pass a mapping instead.

Every value is parsed by a small helper that fails loudly on junk, so a typo stops the start instead of
silently running with a default.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


@dataclass(frozen=True)
class ServerURL:
    """A parsed `imap://user:pass@host:port/FOLDER` or `smtp://…?starttls=1` URL."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    path: str
    query: dict[str, str]

    @property
    def secure(self) -> bool:
        return self.scheme.endswith("s")

    @property
    def starttls(self) -> bool:
        return self.query.get("starttls", "0").lower() in {"1", "true", "yes"}

    def redacted(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{self.host}:{self.port}{self.path}"


_DEFAULT_PORTS = {"imap": 143, "imaps": 993, "smtp": 25, "smtps": 465}


def parse_server_url(url: str, schemes: tuple[str, ...]) -> ServerURL:
    """Parse an IMAP/SMTP URL, or raise SettingsError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(f"{url!r}: expected {'/'.join(schemes)}://[user:pass@]host[:port]")
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return ServerURL(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        path=unquote(parts.path),
        query=query,
    )


@dataclass(frozen=True)
class Settings:
    # SQLAlchemy URL of the database, the source of truth.
    database_url: str = "sqlite:///instance/keepwarm.db"
    # Redis for RQ; None means `keepwarm run` starts a private one.
    redis_url: str | None = None
    # The mailbox reps BCC; None means `keepwarm run` starts a local demo mailbox.
    imap_url: str | None = None
    # Where emails leave; None means `keepwarm run` starts a local mail catcher.
    smtp_url: str | None = None
    # A PEM bundle of a private CA, trusted for imaps://, smtps:// and STARTTLS on top of the system's CAs
    # (certificates and host names are always checked; there is no switch to turn that off).
    ca_file: Path | None = None
    # How Keepwarm logs in to IMAP and SMTP: "password" (from the URL) or "xoauth2" (the URL's user and an OAuth2
    # access token from the KEEPWARM_OAUTH_* settings: Microsoft 365, Google Workspace).
    imap_auth: str = "password"
    smtp_auth: str = "password"
    # Where the access tokens come from: "microsoft" (Microsoft 365 app-only, client credentials through MSAL),
    # "google" (a Google Workspace service account with domain-wide delegation, through google-auth) or "generic"
    # (any OAuth2 token endpoint, KEEPWARM_OAUTH_TOKEN_URL, with the refresh-token or client-credentials grant).
    oauth_provider: str = "generic"
    # microsoft: the authority, https://login.microsoftonline.com/<tenant id> (MSAL reads its OpenID metadata).
    oauth_authority: str | None = None
    # google: the service account's JSON key file (its token_uri is the token endpoint); the mailbox is the login.
    oauth_service_account_file: Path | None = None
    # generic: the OAuth2 token endpoint, e.g. https://login.microsoftonline.com/TENANT/oauth2/v2.0/token.
    oauth_token_url: str | None = None
    # "refresh_token" (a mailbox user's consent, given once) or "client_credentials" (the app's own access).
    oauth_grant: str = "refresh_token"
    # The app's registration: its id, its secret (or a file holding it), the scopes it asks for (space-separated).
    oauth_client_id: str = ""
    oauth_client_secret: str | None = field(default=None, repr=False)
    oauth_client_secret_file: Path | None = None
    oauth_scope: str = ""
    # The refresh token of the refresh_token grant, or a file holding it (read at each refresh).
    oauth_refresh_token: str | None = field(default=None, repr=False)
    oauth_refresh_token_file: Path | None = None
    # The address reps BCC or forward to.
    intake_address: str = "followup@example.com"
    # Our own domains: addresses there are never customers (default: the intake address's domain).
    internal_domains: tuple[str, ...] = ()
    # Public URL used for links in emails.
    base_url: str = "http://127.0.0.1:5000"
    # Signs links and sessions; generated into the instance folder on first run when unset.
    secret_key: str | None = None
    # Organisation default time zone, for reps without one.
    timezone: str = "UTC"
    # Send as the rep's own address (company relay) instead of the intake address with Reply-To the rep.
    send_as_rep: bool = False
    # Folder for the SQLite file, the generated secret and the mail catcher's messages.
    instance_dir: Path = Path("instance")
    # Seconds between safety-net polls of the mailbox (IDLE wakes the poller sooner when offered).
    poll_interval: int = 60
    # Seconds one IDLE lasts before it is renewed (RFC 2177 asks for under 29 minutes; we renew every 5).
    idle_timeout: int = 300
    # UIDs fetched per IMAP command.
    fetch_batch: int = 200
    # Processes that read mail in parallel (0: one per core, at most 4; 1: read in the poller itself).
    read_workers: int = 0
    # SMTP connections one worker sends over at once (most relays allow several per client; 1 sends one by one).
    smtp_connections: int = 2
    # The relay's sending limits, shared by every worker through Redis, e.g. "30/minute;10000/day" (Microsoft 365
    # per mailbox) or "2000/day" (Google Workspace per user); empty: no limit (see the README's table).
    relay_limits: str = ""
    # Limits per sending mailbox when sending as the rep (KEEPWARM_SEND_AS_REP), e.g. "30/minute;10000/day".
    mailbox_limits: str = ""
    # This worker's name on the emails it holds mid-send. A worker started again under the same name sends at
    # once what its previous life left mid-send; empty means host name + process id (what a restarted container
    # keeps; elsewhere the emails wait for their lease to lapse). Never give two running workers the same name.
    worker_id: str = ""
    # authserv-ids of our own MTA (comma list): only Authentication-Results headers stamped with one of them count,
    # since anyone can write such a header; empty trusts the topmost header alone (the one our MTA added last).
    trusted_authserv_ids: tuple[str, ...] = ()
    # Require a pass (DMARC, else aligned SPF or DKIM) on a rep's mail; off, mail with no result is accepted, but a
    # DMARC fail (or an SPF fail without a DKIM pass) for the rep's domain never is.
    require_sender_auth: bool = False
    # Customers one message may name before its customer emails are held until the rep confirms (0: no cap).
    max_customers_per_message: int = 20
    # An OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp's server, a hosted API) asked to read each note
    # beside the built-in reader, e.g. http://127.0.0.1:11434/v1; empty: off. Where the two disagree, the field is
    # unsure (customer emails wait for the rep); on an error or a timeout the built-in reader stands alone.
    llm_url: str | None = None
    # The model name the endpoint serves (e.g. "llama3.1:8b").
    llm_model: str = ""
    # Bearer token for a hosted endpoint; empty for a local one.
    llm_api_key: str | None = None
    # Seconds one request may take before the built-in reader stands alone.
    llm_timeout: float = 20.0
    # Processing attempts before a message is quarantined.
    max_attempts: int = 3
    # Messages larger than this many bytes are kept but quarantined unread.
    max_message_bytes: int = 40 * 1024 * 1024
    # Days after which raw mail bodies are deleted (the reading is kept); 0 keeps them forever.
    raw_retention_days: int = 0
    # Days a debrief link works (the rep can edit the answers until then).
    debrief_link_days: int = 30
    # Reverse proxies in front of the web app that each add X-Forwarded-For (and -Proto): with the right count,
    # the login throttle sees each visitor's own IP, not the proxy's (which would let one stranger stop everyone).
    proxy_hops: int = 0
    # Debug mode: the web app's debugger and relaxed secret-key checks.
    debug: bool = False
    # Log lines as JSON objects instead of text.
    log_json: bool = False
    # Webhooks may post to loopback, private, link-local and reserved addresses (a receiver on this machine or the
    # LAN); off, such an endpoint is refused when registered and at every delivery (SSRF).
    webhook_allow_private: bool = False
    # Seconds one webhook delivery may take (connect, send, the receiver's answer) before it counts as a timeout.
    webhook_timeout: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def intake_domain(self) -> str:
        return self.intake_address.rsplit("@", 1)[-1].lower()

    @property
    def own_domains(self) -> tuple[str, ...]:
        return self.internal_domains or (self.intake_domain,)

    @property
    def message_id_domain(self) -> str:
        """Domain of the Message-IDs we mint: recognising it is how our own mail is spotted."""
        return f"keepwarm.{self.intake_domain}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def imap(self) -> ServerURL:
        if not self.imap_url:
            raise SettingsError("KEEPWARM_IMAP_URL is not set")
        return parse_server_url(self.imap_url, ("imap", "imaps"))

    def smtp(self) -> ServerURL:
        if not self.smtp_url:
            raise SettingsError("KEEPWARM_SMTP_URL is not set")
        return parse_server_url(self.smtp_url, ("smtp", "smtps"))

    def with_overrides(self, **values) -> Settings:
        return replace(self, **values)


def _text(raw: str) -> str:
    return raw.strip()


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{raw!r} is not a boolean (use true/false)")


def _integer(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise SettingsError(f"{raw!r} must not be negative")
    return value


def _domains(raw: str) -> tuple[str, ...]:
    return tuple(d.strip().lower().lstrip("@") for d in raw.split(",") if d.strip())


def _address(raw: str) -> str:
    value = raw.strip().lower()
    if value.count("@") != 1 or any(c.isspace() for c in value):
        raise SettingsError(f"{raw!r} is not an email address")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SettingsError(f"{raw!r} must be more than 0")
    return value


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{raw!r} is not an IANA time zone (e.g. Europe/Rome)") from None
    return raw.strip()


def _rate_limits(raw: str) -> str:
    """Limits in the `limits` library's notation ("30/minute;10000 per day"), checked here so a typo is named."""
    from limits import parse_many

    text = raw.strip()
    if text:
        try:
            parse_many(text)
        except ValueError:
            raise SettingsError(f"{raw!r} is not a list of limits like '30/minute;10000/day'") from None
    return text


MAIL_AUTH = ("password", "xoauth2")
OAUTH_GRANTS = ("refresh_token", "client_credentials")
OAUTH_PROVIDERS = ("generic", "microsoft", "google")


def _choice(raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{raw!r} is not one of {', '.join(choices)}")
    return value


def _readable_file(raw: str) -> Path | None:
    """A file that exists and can be read now (a CA bundle, a secret), or None when empty."""
    if not raw.strip():
        return None
    path = Path(raw.strip()).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise SettingsError(f"{raw!r} is not a readable file")
    return path


def _check_oauth(settings: Settings) -> None:
    """XOAUTH2 needs what the provider needs: microsoft an authority, a client id and a secret; google a service
    account key file; generic a token endpoint, a client id and, for the refresh_token grant, a refresh token."""
    if "xoauth2" not in (settings.imap_auth, settings.smtp_auth):
        return
    secret = settings.oauth_client_secret or settings.oauth_client_secret_file
    if settings.oauth_provider == "microsoft":
        missing = [name for name, value in (("OAUTH_AUTHORITY", settings.oauth_authority),
                                            ("OAUTH_CLIENT_ID", settings.oauth_client_id),
                                            ("OAUTH_CLIENT_SECRET (or KEEPWARM_OAUTH_CLIENT_SECRET_FILE)", secret))
                   if not value]
        if settings.oauth_authority and not settings.oauth_authority.startswith("https://"):
            missing.append("OAUTH_AUTHORITY as an https:// URL (https://login.microsoftonline.com/<tenant id>)")
    elif settings.oauth_provider == "google":
        missing = [] if settings.oauth_service_account_file else ["OAUTH_SERVICE_ACCOUNT_FILE"]
    else:
        missing = [name for name, value in (("OAUTH_TOKEN_URL", settings.oauth_token_url),
                                            ("OAUTH_CLIENT_ID", settings.oauth_client_id)) if not value]
        if settings.oauth_grant == "refresh_token" and not (settings.oauth_refresh_token
                                                            or settings.oauth_refresh_token_file):
            missing.append("OAUTH_REFRESH_TOKEN (or KEEPWARM_OAUTH_REFRESH_TOKEN_FILE)")
    if missing:
        raise SettingsError("xoauth2 login needs " + ", ".join(f"KEEPWARM_{name}" for name in missing))


_PARSERS = {
    "database_url": _text,
    "redis_url": _optional,
    "imap_url": _optional,
    "smtp_url": _optional,
    "ca_file": lambda raw: _readable_file(raw),
    "imap_auth": lambda raw: _choice(raw, MAIL_AUTH),
    "smtp_auth": lambda raw: _choice(raw, MAIL_AUTH),
    "oauth_provider": lambda raw: _choice(raw, OAUTH_PROVIDERS),
    "oauth_authority": _optional,
    "oauth_service_account_file": lambda raw: _readable_file(raw),
    "oauth_token_url": _optional,
    "oauth_grant": lambda raw: _choice(raw, OAUTH_GRANTS),
    "oauth_client_id": _text,
    "oauth_client_secret": _optional,
    "oauth_client_secret_file": lambda raw: _readable_file(raw),
    "oauth_scope": _text,
    "oauth_refresh_token": _optional,
    "oauth_refresh_token_file": lambda raw: _readable_file(raw),
    "intake_address": _address,
    "internal_domains": _domains,
    "base_url": lambda raw: raw.strip().rstrip("/"),
    "secret_key": _optional,
    "timezone": _timezone,
    "send_as_rep": _boolean,
    "instance_dir": lambda raw: Path(raw.strip()),
    "poll_interval": _integer,
    "idle_timeout": _integer,
    "fetch_batch": _integer,
    "read_workers": _integer,
    "smtp_connections": _integer,
    "relay_limits": lambda raw: _rate_limits(raw),
    "mailbox_limits": lambda raw: _rate_limits(raw),
    "worker_id": _text,
    "trusted_authserv_ids": _domains,
    "require_sender_auth": _boolean,
    "max_customers_per_message": _integer,
    "llm_url": _optional,
    "llm_model": _text,
    "llm_api_key": _optional,
    "llm_timeout": lambda raw: _positive_float(raw),
    "max_attempts": _integer,
    "max_message_bytes": _integer,
    "debrief_link_days": _integer,
    "raw_retention_days": _integer,
    "proxy_hops": _integer,
    "debug": _boolean,
    "log_json": _boolean,
    "webhook_allow_private": _boolean,
    "webhook_timeout": lambda raw: _positive_float(raw),
}


def load_settings(overrides: Mapping[str, object] | None = None, *, environ: Mapping[str, str] | None = None,
                  env_file: str | None = ".env", fallback: Mapping[str, str] | None = None) -> Settings:
    """Settings from `fallback` (`KEEPWARM_*` names: the URLs of a running stack), then `.env`, then the
    environment, then `overrides` (already typed, or strings)."""
    source = {**(fallback or {}), **(dotenv_values(env_file) if env_file and Path(env_file).exists() else {}),
              **(os.environ if environ is None else environ)}
    values: dict[str, object] = {}
    for name, parse in _PARSERS.items():
        raw = source.get(f"KEEPWARM_{name.upper()}")
        if raw is not None:
            values[name] = _parse_named(name, parse, raw)
    for name, value in (overrides or {}).items():
        values[name] = _parse_named(name, _PARSERS[name], value) if isinstance(value, str) else value
    return _finish(Settings(**values))


def _parse_named(name: str, parse, raw: str):
    try:
        return parse(raw)
    except SettingsError as exc:
        raise SettingsError(f"KEEPWARM_{name.upper()}: {exc}") from None


def _finish(settings: Settings) -> Settings:
    """Make the instance folder absolute and give the SQLite default a path inside it."""
    instance = settings.instance_dir.resolve()
    database_url = settings.database_url
    if database_url == Settings.database_url:
        database_url = f"sqlite:///{instance / 'keepwarm.db'}"
    for name, check in (("imap_url", settings.imap), ("smtp_url", settings.smtp)):
        if getattr(settings, name):
            try:
                check()
            except SettingsError as exc:
                raise SettingsError(f"KEEPWARM_{name.upper()}: {exc}") from None
    if settings.smtp_connections < 1:
        raise SettingsError("KEEPWARM_SMTP_CONNECTIONS: at least 1")
    _check_oauth(settings)
    return replace(settings, instance_dir=instance, database_url=database_url)


# Values copied from examples and tutorials: signing links with one of these is as good as not signing them.
KNOWN_DEFAULTS = {"change-me", "changeme", "secret", "dev", "development", "keepwarm", "please-change-me",
                  "your-secret-key", "replace-me"}
MIN_SECRET_LENGTH = 16


def check_secret_key(settings: Settings) -> None:
    """Refuse to serve outside debug mode with a missing, default or short secret key."""
    if settings.debug:
        return
    key = settings.secret_key or ""
    if not key:
        raise SettingsError("KEEPWARM_SECRET_KEY is missing (set it, or let `keepwarm run` generate one)")
    if key.strip().lower() in KNOWN_DEFAULTS or len(key) < MIN_SECRET_LENGTH:
        raise SettingsError(f"KEEPWARM_SECRET_KEY is a default or shorter than {MIN_SECRET_LENGTH} characters: "
                            "set a long random value (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)")


def ensure_secret_key(settings: Settings) -> Settings:
    """The configured secret, else one generated once into the instance folder (mode 600) and reused."""
    if settings.secret_key:
        return settings
    path = settings.instance_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return replace(settings, secret_key=path.read_text().strip())


# -- the stack `keepwarm run` started ---------------------------------------------------------------------------
# While it runs, `keepwarm run` keeps this file in its instance folder: its pid and the URLs its processes use, so
# a command typed in another terminal reaches the private servers it started.
RUN_FILE = "run.json"
RUN_FILE_VARIABLES = ("KEEPWARM_DATABASE_URL", "KEEPWARM_REDIS_URL", "KEEPWARM_IMAP_URL", "KEEPWARM_SMTP_URL")


@dataclass(frozen=True)
class RunningStack:
    """What one `keepwarm run` wrote into its instance folder."""

    path: Path
    pid: int
    # When that process started (clock ticks after boot, from /proc): a pid given since to another process
    # is not the same run.
    started: str | None
    # KEEPWARM_* name -> the URL its processes use.
    urls: Mapping[str, str]

    @property
    def alive(self) -> bool:
        """Its process still runs: not gone, not a zombie, not a later process that was given the same pid."""
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process: it exists
            pass
        state = _process_stat(self.pid)
        return state is None or (state[0] != "Z" and state[19] == self.started)

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "started": self.started, **self.urls}, indent=2)


def read_running_stack(instance_dir: Path) -> RunningStack | None:
    """The run file in the instance folder, or None when there is none; a file we cannot read is a dead run's."""
    path = Path(instance_dir) / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return RunningStack(path, 0, None, {})
    urls = {name: value for name in RUN_FILE_VARIABLES if isinstance(value := record.get(name), str) and value}
    started = record.get("started")
    return RunningStack(path, record["pid"], started if isinstance(started, str) else None, urls)


def process_started(pid: int) -> str | None:
    """When a process started, in clock ticks after boot; None where /proc does not tell."""
    state = _process_stat(pid)
    return state[19] if state else None


def _process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [state, ppid, …] (starttime is the 20th)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None
