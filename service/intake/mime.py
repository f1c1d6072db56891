"""Reading raw email bytes into a `Letter`: tolerant of bad charsets, broken MIME and missing headers."""

from __future__ import annotations

import codecs
import email
import email.policy
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from inscriptis import get_text

from service.intake.quotes import Person

logger = logging.getLogger(__name__)

# The note is at the top; beyond this many characters of body text nothing useful for reading remains.
MAX_TEXT_CHARS = 200_000

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Letter:
    """What one email says, decoded: headers, people, the body text and any attached emails."""

    message: Message
    message_id: str | None
    subject: str
    date: datetime | None
    sender: Person | None
    to: tuple[Person, ...]
    cc: tuple[Person, ...]
    reply_to: tuple[Person, ...]
    delivered_to: tuple[str, ...]
    return_path: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attached: tuple[Letter, ...] = ()
    content_types: tuple[str, ...] = ()
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str:
        """A header's decoded value, '' when missing or unreadable."""
        return header_text(self.message, name)

    @property
    def recipients(self) -> tuple[Person, ...]:
        return self.to + self.cc


def read_letter(raw: bytes) -> Letter:
    """Parse raw bytes into a Letter; never raises for bad content, only records defects."""
    raw = _normalise_line_endings(raw)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in message.defects):
        message = _reparse(_mend_header_block(raw), message.defects)
    if message.get_content_maintype() == "multipart" and not message.is_multipart():
        message = _with_guessed_boundary(message)
    return _letter_from(message)


def _reparse(raw: bytes, defects: list) -> Message:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    message.defects.extend(defects)
    return message


_HEADER_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")


def _mend_header_block(raw: bytes) -> bytes:
    """A header line without a colon is a wrapped line whose indent was lost: indent it again."""
    head, separator, body = raw.partition(b"\n\n") if b"\r\n\r\n" not in raw else raw.partition(b"\r\n\r\n")
    lines = head.splitlines(keepends=True)
    mended = [line if _HEADER_NAME.match(line) or line[:1] in (b" ", b"\t") else b" " + line for line in lines]
    return b"".join(mended) + separator + body


def _with_guessed_boundary(message: Message) -> Message:
    """A multipart without its boundary parameter: take the boundary from the first delimiter line."""
    payload = message.get_payload()
    match = re.search(r"^--([^\s]{1,70}?)\s*$", payload if isinstance(payload, str) else "", re.M)
    if not match:
        return message
    message.set_param("boundary", match.group(1))
    return _reparse(message.as_bytes(), message.defects)


def synthetic_message_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none, so duplicates are still recognised."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@missing-message-id.invalid>"


def _normalise_line_endings(raw: bytes) -> bytes:
    # Some bounces arrive with CR-only line endings, which the parser would read as one long header.
    if b"\r" in raw and b"\n" not in raw[:4096]:
        return raw.replace(b"\r", b"\n")
    return raw


def _letter_from(message: Message) -> Letter:
    text, html = _body_text(message)
    return Letter(
        message=message,
        message_id=_first_msgid(header_text(message, "Message-ID")),
        subject=header_text(message, "Subject"),
        date=_date(header_text(message, "Date")),
        sender=next(iter(read_people(message, "From")), None),
        to=read_people(message, "To"),
        cc=read_people(message, "Cc"),
        reply_to=read_people(message, "Reply-To"),
        delivered_to=tuple(p.email for p in read_people(message, "Delivered-To", "X-Original-To", "Envelope-To")),
        return_path=_return_path(message),
        in_reply_to=tuple(_MSGID.findall(header_text(message, "In-Reply-To"))),
        references=tuple(_MSGID.findall(header_text(message, "References"))),
        text=text[:MAX_TEXT_CHARS],
        html=html,
        attached=tuple(_letter_from(m) for m in _attached_messages(message)),
        content_types=tuple(part.get_content_type() for part in message.walk()),
        defects=tuple(_defects(message)),
    )


def header_text(message: Message, name: str) -> str:
    """All values of a header, RFC 2047-decoded and joined; '' when absent; never raises."""
    return ", ".join(_decode_header_value(v) for v in _raw_values(message, name)).strip()


def _raw_values(message: Message, *names: str) -> list[str]:
    """A header's values as the email wrote them, raw 8-bit text (RFC 6532: "Subject: Perché", a name in UTF-8
    or Latin-1 without encoded words) decoded like a body without a charset. The parser keeps such bytes as
    escapes, and its own `get` turned each into two replacement characters ("Niccol��")."""
    wanted = {name.lower() for name in names}
    values = [value for key, value in message.raw_items() if key.lower() in wanted]
    return [decode_bytes(value.encode("ascii", "surrogateescape"), None) if isinstance(value, str)
            and not value.isascii() else str(value) for value in values]


def _decode_header_value(value: str) -> str:
    try:
        if value.isascii():
            return composed(str(make_header(decode_header(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return value.encode("ascii", "replace").decode("ascii")
    # Raw 8-bit text, maybe beside encoded words: unfolded, and each run of encoded words decoded on its own (the
    # rest stays as written: decode_header would hand it back as raw-unicode-escape, reading a typed "\u000a" as
    # a line break), a run that cannot be decoded kept as it stands.
    return composed(_ENCODED_WORDS.sub(_decoded_run, _FOLD.sub("", value)))


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORDS = re.compile(r"=\?[^?\s]*\?[qQbB]\?[^?\s]*\?=(?:\s+=\?[^?\s]*\?[qQbB]\?[^?\s]*\?=)*")


def _decoded_run(match: re.Match) -> str:
    try:
        return str(make_header(decode_header(match.group())))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return match.group()


def read_people(message: Message, *names: str) -> tuple[Person, ...]:
    raw_values = _raw_values(message, *names)
    people: list[Person] = []
    for display, address in getaddresses(raw_values):
        address = address.strip().strip("<>").lower()
        if "@" in address and " " not in address:
            people.append(Person(name=_decode_header_value(display).strip() or None, email=address))
    return tuple(dict.fromkeys(people))


def _return_path(message: Message) -> str | None:
    value = message.get("Return-Path")
    if value is None:
        return None
    return str(value).strip().strip("<>").strip().lower()


def _first_msgid(value: str) -> str | None:
    match = _MSGID.search(value)
    return match.group(0) if match else (f"<{value.strip()}>" if value.strip() and " " not in value.strip() else None)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _attached_messages(message: Message) -> list[Message]:
    """Emails attached as message/rfc822 (forward as attachment), at any depth except inside reports."""
    found = []
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            found.extend(p for p in part.get_payload() if isinstance(p, Message))
    return found


def _body_text(message: Message) -> tuple[str, str | None]:
    """The first text/plain part outside attachments, else the first HTML part as text."""
    plain, html = None, None
    for part in _body_parts(message):
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = decode_part(part)
        elif kind == "text/html" and html is None:
            html = decode_part(part)
    if plain is not None and plain.strip():
        return plain, html
    return (html_to_text(html) if html else (plain or "")), html


def _body_parts(message: Message):
    """Leaf parts of the message itself: attached emails and attachments are not its body."""
    if message.get_content_maintype() == "message":
        return
    if not message.is_multipart():
        if not _is_attachment(message):
            yield message
        return
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else []:
        if isinstance(part, Message):
            yield from _body_parts(part)


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition", "")).lower()
    return disposition.startswith("attachment")


def decode_part(part: Message) -> str:
    """A leaf part's text, decoded with its declared charset, else UTF-8, else Windows-1252."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # the email package can raise on pathological encodings
        payload = None
    if payload is None:
        payload = str(part.get_payload()).encode("utf-8", "replace")
    return decode_bytes(payload, part.get_content_charset())


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Decode bytes whatever the label says: unknown charsets and mislabeled 8-bit text included; composed (NFC)."""
    for candidate in _charset_candidates(charset, payload):
        try:
            return composed(payload.decode(candidate))
        except (UnicodeDecodeError, LookupError):
            continue
    return composed(payload.decode("utf-8", errors="replace"))


def composed(text: str) -> str:
    """Text with its accents composed (Unicode NFC): a Mac pasting "Zielin\u0301ska" (n, then a combining accent)
    writes the same name as "Zielińska", and the reader's letter classes know the composed letters only. Text read
    is normalised once, here and in the headers, so every offset the reader gives points into the stored text."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _charset_candidates(charset: str | None, payload: bytes) -> list[str]:
    declared = (charset or "").strip().strip('"').lower()
    if declared in {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown"} or not _known_codec(declared):
        return ["utf-8", "cp1252"]
    if declared in {"iso-8859-1", "latin-1", "latin1"}:
        # Mail clients label Windows-1252 text (curly quotes, €) as Latin-1 all the time.
        return ["cp1252", "latin-1"]
    return [declared, "utf-8", "cp1252"]


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def html_to_text(html: str) -> str:
    """HTML as the reader sees it: paragraphs, line breaks and lists kept as lines."""
    try:
        return get_text(html)
    except Exception:  # inscriptis on malformed markup: fall back to crude tag stripping
        logger.warning("inscriptis failed; stripping tags")
        return re.sub(r"<[^>]+>", " ", html)


def _defects(message: Message) -> list[str]:
    return [f"{part.get_content_type()}: {type(d).__name__}" for part in message.walk() for d in part.defects]
