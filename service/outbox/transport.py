"""SMTP with one connection reused across sends in a worker, and a clear verdict on every failure."""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from typing import NoReturn

from service.outbox.compose import Outgoing
from service.settings import ServerURL

logger = logging.getLogger(__name__)


class TransientSendError(RuntimeError):
    """A 4xx or a dropped connection: try again later."""


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
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


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
        if not 500 <= code < 600:
            raise TransientSendError(f"{code} {text}")
        if stage == "recipient" and address_refused(code, text):
            raise PermanentSendError(f"{code} {text}", code=code, stage=stage, address_refused=True)
        meaning = _LOGIN_REQUIRED if code == 530 else STAGE_MEANINGS[stage]  # 530 answers any command
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
        if self.url.secure:
            connection = smtplib.SMTP_SSL(self.url.host, self.url.port, timeout=self.timeout,
                                          context=ssl.create_default_context())
        else:
            connection = smtplib.SMTP(self.url.host, self.url.port, timeout=self.timeout)
            if self.url.starttls:
                connection.starttls(context=ssl.create_default_context())
        if self.url.username:
            try:
                connection.login(self.url.username, self.url.password or "")
            except smtplib.SMTPException:
                connection.close()
                raise
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _stage(error: smtplib.SMTPResponseException) -> str:
    """Which SMTP stage an exception comes from (smtplib names it by its class)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "auth"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return "sender"
    if isinstance(error, smtplib.SMTPDataError):
        return "data"
    return "connect"  # the greeting, HELO/EHLO or STARTTLS
