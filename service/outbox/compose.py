"""Composing the MIME message: text and HTML parts, and headers that no input can inject into."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from service.outbox.templates import Rendered

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_header(value: str | None, *, limit: int = 300) -> str:
    """One line of plain text: CR, LF and every other control character become a space."""
    return " ".join(_CONTROL.sub(" ", value or "").split())[:limit]


def address(name: str | None, email: str) -> Address:
    """A mailbox whose display name is cleaned and whose address cannot carry anything but an address."""
    local, _, domain = clean_header(email).replace(" ", "").rpartition("@")
    if not local or not domain or any(c in local + domain for c in '<>,;"()[]\\'):
        raise ValueError(f"not a sendable address: {email!r}")
    return Address(display_name=clean_header(name, limit=120), username=local, domain=domain)


@dataclass(frozen=True)
class Envelope:
    """Who an email is from and to, and the thread it belongs in."""

    sender: Address
    to: Address
    reply_to: Address | None
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None


def compose(envelope: Envelope, rendered: Rendered) -> EmailMessage:
    """The message to send: plain text first, HTML as the alternative when the template has one."""
    message = EmailMessage()
    message["From"] = envelope.sender
    message["To"] = envelope.to
    if envelope.reply_to is not None:
        message["Reply-To"] = envelope.reply_to
    message["Subject"] = clean_header(rendered.subject, limit=250)
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    # RFC 3834: machines must not answer us, and we never answer them.
    message["Auto-Submitted"] = "auto-generated"
    _thread(message, envelope)
    _unsubscribe(message, envelope)
    message.set_content(rendered.text)
    if rendered.html:
        message.add_alternative(rendered.html, subtype="html")
    return message


def _thread(message: EmailMessage, envelope: Envelope) -> None:
    ids = [i for i in (*envelope.references, envelope.in_reply_to) if i and _is_msgid(i)]
    if envelope.in_reply_to and _is_msgid(envelope.in_reply_to):
        message["In-Reply-To"] = envelope.in_reply_to
        message["References"] = " ".join(dict.fromkeys(ids[-20:]))


def _unsubscribe(message: EmailMessage, envelope: Envelope) -> None:
    links = []
    if envelope.unsubscribe_url:
        links.append(f"<{clean_header(envelope.unsubscribe_url, limit=900)}>")
    if envelope.unsubscribe_mailto:
        links.append(f"<{clean_header(envelope.unsubscribe_mailto, limit=900)}>")
    if links:
        message["List-Unsubscribe"] = ", ".join(links)
    if envelope.unsubscribe_url:
        # RFC 8058: a POST to the URL unsubscribes with one click, no page to confirm.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _is_msgid(value: str) -> bool:
    return bool(re.fullmatch(r"<[^<>\s]{3,250}>", value))


def reply_subject(subject: str) -> str:
    """'Re: ' + the meeting's subject, without stacking prefixes."""
    subject = clean_header(subject)
    return subject if re.match(r"(?i)^(re|r|aw|sv)\s*:", subject) else f"Re: {subject}"
