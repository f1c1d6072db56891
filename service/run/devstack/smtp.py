"""A mail catcher on aiosmtpd: every message it accepts is written under a folder and kept in memory.

Tests script its answers per recipient (`451` a few times, then accept; `550` always) to exercise retries.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.controller import Controller

from service.run.devstack.servers import free_port


@dataclass
class CaughtMessage:
    envelope_from: str
    recipients: list[str]
    raw: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)

    @property
    def message_id(self) -> str | None:
        """The Message-ID alone, from the header block only (the benches read tens of thousands)."""
        value = BytesHeaderParser(policy=policy.compat32).parsebytes(self.raw).get("Message-ID")
        return str(value).strip() if value is not None else None


@dataclass
class _Handler:
    folder: Path | None
    caught: list[CaughtMessage] = field(default_factory=list)
    # address -> list of SMTP replies to give, one per attempt ("" means accept); the last one repeats.
    scripts: dict[str, list[str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count = field(default_factory=itertools.count)
    # Seconds to hold the final answer after a message is stored (tests kill a client mid-send with it).
    delay_after_data: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._scripted_reply(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _scripted_reply(self, address: str) -> str:
        with self.lock:
            script = self.scripts.get(address)
            if not script:
                return ""
            attempt = self.attempts.get(address, 0)
            self.attempts[address] = attempt + 1
            return script[min(attempt, len(script) - 1)]

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        caught = CaughtMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw))
        with self.lock:
            self.caught.append(caught)
            number = next(self.counter)
        if self.folder is not None:
            (self.folder / f"{number:06d}.eml").write_bytes(caught.raw)
        if self.delay_after_data:
            await asyncio.sleep(self.delay_after_data)
        return "250 Message accepted"


class MailCatcher:
    """An SMTP server on loopback that keeps what it is sent."""

    def __init__(self, folder: Path | None = None, port: int | None = None):
        self.folder = Path(folder) if folder else None
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.handler = _Handler(self.folder)
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                      data_size_limit=64 * 1024 * 1024)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def caught(self) -> list[CaughtMessage]:
        return self.handler.caught

    def script(self, address: str, replies: list[str]) -> None:
        """Answer RCPT TO for `address` with these replies in turn ('' accepts), repeating the last."""
        self.handler.scripts[address.lower()] = replies
        self.handler.attempts[address.lower()] = 0

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.caught.clear()
            self.handler.scripts.clear()
            self.handler.attempts.clear()

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
