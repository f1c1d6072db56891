"""SMTP with one connection reused across sends in a worker, and a clear verdict on every failure."""

from __future__ import annotations

import logging
import re
import smtplib
import time
from dataclasses import dataclass
from typing import NoReturn

from service import context
from service.mailauth import starttls_missing, tls_context, token_provider, xoauth2_string
from service.outbox.compose import Outgoing
from service.settings import ServerURL, Settings

logger = logging.getLogger(__name__)


class TransientSendError(RuntimeError):
    """A 4xx or a dropped connection: try again later."""


class ThrottledError(TransientSendError):
    """The relay says we send too fast or over a quota (421, a 45x or 5xx that says rate, quota or "too many"):
    sending pauses for everybody and the email keeps its place; it says nothing about the customer."""


class PermanentSendError(RuntimeError):
    """A 5xx: this email will not go as it is. `stage` says which command was refused: connect, auth, sender
    (MAIL FROM), recipient (RCPT TO) or data; only `address_refused` says the customer's address is bad."""

    def __init__(self, message: str, *, code: int, stage: str = "recipient", address_refused: bool = False):
        super().__init__(message)
        self.code, self.stage, self.address_refused = code, stage, address_refused


# What a refusal at each stage means when it is not about the recipient's address (it goes in last_error).
STAGE_MEANINGS = {
    "connect": "the relay refused the connection",
    "auth": "the relay refused our login: check the user and password in KEEPWARM_SMTP_URL",
    "sender": "the relay refused our sender address at MAIL FROM",
    "recipient": "the relay refused the recipient at RCPT TO without saying the address does not exist",
    "data": "the relay refused the message at DATA",
}
_LOGIN_REQUIRED = "the relay wants a login: set the user and password in KEEPWARM_SMTP_URL"
_TOKEN_REFUSED = ("the relay refused our OAuth2 token: check that the app may send as the URL's user "
                  "(`keepwarm check` says more)")
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# How relays say "too fast" or "over quota": Microsoft 365 (554 5.2.0 …SubmissionQuotaExceededException, 432 4.3.2
# …ConcurrentSubmissionLimit), Google (421 4.7.0 / 450 4.2.1 / 550 5.4.5 "rate"/"quota"), Postfix and most hosted
# relays (421 4.7.0 "Try again later", 452 4.5.3 "too many"). Greylisting (451 4.7.1 "greylisted, try again") is not.
_THROTTLING = re.compile(r"\brate\b|quota|too\s+(?:many|fast)|throttl|slow\s+down|concurrent\w*\s*(?:submission|"
                         r"connection)", re.IGNORECASE)


def throttled(code: int, text: str) -> bool:
    """Whether the relay's answer says we send too fast or too much (see _THROTTLING), not that this email or
    this address is wrong."""
    if "greylist" in text.lower() or "graylist" in text.lower():
        return False
    return code == 421 or (400 <= code < 600 and bool(_THROTTLING.search(text)))


def address_refused(code: int, text: str) -> bool:
    """A recipient refusal that condemns the address: 5xx with status 5.1.x (a bad mailbox, domain or syntax) or
    5.2.1 (mailbox disabled). 5.1.7/5.1.8 are about the *sender*, and so is Postfix's "Sender address rejected",
    which it gives at RCPT (it delays MAIL FROM checks until then); a bare 550 says too little to drop anyone."""
    status = _ENHANCED.match(text)
    if not (500 <= code < 600 and status) or "sender address" in text.lower():
        return False
    subject, detail = int(status[2]), int(status[3])
    return status[1] == "5" and (subject == 1 and detail not in (7, 8) or (subject, detail) == (2, 1))


@dataclass
class SmtpTransport:
    url: ServerURL
    timeout: float = 60.0
    # A connection idle for longer than this is checked with NOOP before use (servers drop idle ones).
    idle_check_after: float = 20.0
    # Whose TLS and login settings to use (KEEPWARM_CA_FILE, KEEPWARM_SMTP_AUTH…): the process's when None.
    settings: Settings | None = None
    _connection: smtplib.SMTP | None = None
    _last_used: float = 0.0

    def send(self, message: Outgoing, recipient: str) -> None:
        """Deliver to one recipient, or raise Transient/PermanentSendError naming the stage that refused it."""
        connection = self._open()
        try:
            refused = connection.sendmail(message.sender, [recipient], message.data)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            self._raise_for(code, text, "recipient")
        except (smtplib.SMTPException, OSError) as error:
            self._fail(error)
        if refused:  # per-recipient refusals come back here when other recipients were accepted
            code, text = next(iter(refused.values()))
            self._raise_for(code, text, "recipient")

    def _open(self) -> smtplib.SMTP:
        """The connection, logged in; a refused greeting or login raises like a refused command."""
        try:
            return self._connected()
        except (smtplib.SMTPException, OSError) as error:
            self._fail(error)

    def _fail(self, error: Exception) -> NoReturn:
        """Drop the connection, then raise what the error says: a refused command by its code and stage, any other
        failure as transient."""
        self.close()
        if isinstance(error, smtplib.SMTPResponseException):
            self._raise_for(error.smtp_code, error.smtp_error, _stage(error))
        raise TransientSendError(f"SMTP connection failed: {error}") from error

    def _raise_for(self, code: int, text, stage: str) -> None:
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        if throttled(code, text):
            raise ThrottledError(f"{code} {text} (the relay is throttling us)")
        if not 500 <= code < 600:
            raise TransientSendError(f"{code} {text}")
        if stage == "recipient" and address_refused(code, text):
            raise PermanentSendError(f"{code} {text}", code=code, stage=stage, address_refused=True)
        meaning = _LOGIN_REQUIRED if code == 530 else STAGE_MEANINGS[stage]  # 530 answers any command
        if stage == "auth" and (self.settings or context.current().settings).smtp_auth == "xoauth2":
            meaning = _TOKEN_REFUSED
        raise PermanentSendError(f"{code} {text} ({meaning})", code=code, stage=stage)

    def _connected(self) -> smtplib.SMTP:
        idle = time.monotonic() - self._last_used
        if self._connection is None or (idle > self.idle_check_after and not self._alive()):
            self._connection = self._connect()
        self._last_used = time.monotonic()
        return self._connection

    def _alive(self) -> bool:
        try:
            return self._connection.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            self.close()
            return False

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings or context.current().settings
        tls = tls_context(settings)
        if self.url.secure:
            connection = smtplib.SMTP_SSL(self.url.host, self.url.port, timeout=self.timeout, context=tls)
        else:
            connection = smtplib.SMTP(self.url.host, self.url.port, timeout=self.timeout)
        try:
            if self.url.starttls:
                connection.ehlo()
                if not connection.has_extn("starttls"):
                    raise starttls_missing(f"the SMTP relay {self.url.host}:{self.url.port}")
                connection.starttls(context=tls)
            self._log_in(connection, settings)
        except BaseException:
            connection.close()
            raise
        return connection

    def _log_in(self, connection: smtplib.SMTP, settings: Settings) -> None:
        """AUTH with the URL's password, or XOAUTH2 with an access token: a refused token is renewed and tried
        once more (it may have been revoked or expired early)."""
        if settings.smtp_auth != "xoauth2":
            if self.url.username:
                connection.login(self.url.username, self.url.password or "")
            return
        tokens = token_provider(settings, self.url.username)
        token = tokens.token()
        try:
            _xoauth2(connection, self.url.username or "", token)
        except smtplib.SMTPAuthenticationError:
            tokens.invalidate(token)
            _xoauth2(connection, self.url.username or "", tokens.token())

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _xoauth2(connection: smtplib.SMTP, user: str, token: str) -> None:
    """AUTH XOAUTH2: the token in the initial response; to the error challenge a server may send (a 334 with JSON
    saying why), an empty answer, after which it gives its 535."""
    connection.ehlo_or_helo_if_needed()
    connection.auth("XOAUTH2", lambda challenge=None: "" if challenge else xoauth2_string(user, token))


def _stage(error: smtplib.SMTPResponseException) -> str:
    """Which SMTP stage an exception comes from (smtplib names it by its class)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "auth"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return "sender"
    if isinstance(error, smtplib.SMTPDataError):
        return "data"
    return "connect"  # the greeting, HELO/EHLO or STARTTLS
