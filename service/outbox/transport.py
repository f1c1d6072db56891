"""SMTP with one connection reused across sends in a worker, and a clear verdict on every failure."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass

from service.outbox.compose import Outgoing
from service.settings import ServerURL

logger = logging.getLogger(__name__)


class TransientSendError(RuntimeError):
    """A 4xx or a dropped connection: try again later."""


class PermanentSendError(RuntimeError):
    """A 5xx for the recipient: this address will not work."""

    def __init__(self, message: str, *, code: int):
        super().__init__(message)
        self.code = code


@dataclass
class SmtpTransport:
    url: ServerURL
    timeout: float = 60.0
    # A connection idle for longer than this is checked with NOOP before use (servers drop idle ones).
    idle_check_after: float = 20.0
    _connection: smtplib.SMTP | None = None
    _last_used: float = 0.0

    def send(self, message: Outgoing, recipient: str) -> None:
        """Deliver to one recipient, or raise Transient/PermanentSendError."""
        try:
            refused = self._connected().sendmail(message.sender, [recipient], message.data)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            self._raise_for(code, text)
        except smtplib.SMTPResponseException as error:
            self.close()
            self._raise_for(error.smtp_code, error.smtp_error)
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise TransientSendError(f"SMTP connection failed: {error}") from error
        if refused:  # per-recipient refusals come back here when other recipients were accepted
            code, text = next(iter(refused.values()))
            self._raise_for(code, text)

    def _raise_for(self, code: int, text) -> None:
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        if 500 <= code < 600:
            raise PermanentSendError(f"{code} {text}", code=code)
        raise TransientSendError(f"{code} {text}")

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
            connection.login(self.url.username, self.url.password or "")
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
