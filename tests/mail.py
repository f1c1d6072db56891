"""Building test emails."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime


def recap(n: int, *, sender: str = "Tom Baker <tom.baker@acme.example>", to: str = "Jane <jane@globex.example>",
          subject: str | None = None, body: str | None = None, message_id: str | None = None,
          date: datetime | None = None) -> bytes:
    """A BCC'd recap as the intake mailbox receives it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject or f"Our meeting #{n}"
    message["Date"] = format_datetime(date or datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    message["Message-ID"] = message_id or f"<recap-{n}@mail.acme.example>"
    message.set_content(body or f"Hi Jane,\n\nthanks for meeting #{n}. I understand the budget isn't there "
                                "until Q3; happy to pick this up again then.\n\nTom\n")
    return message.as_bytes()


def wait_until(condition, seconds: float, *, every: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"not true after {seconds}s")
