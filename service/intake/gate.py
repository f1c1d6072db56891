"""The gate: which messages may lead to email, and why the others are ignored.

Checked in this order, the first match wins: bounce, auto_reply, own_mail, unknown_sender, unauthenticated,
no_customer, duplicate. A registered rep's reply to one of our emails (to Keepwarm alone) is an answer, not our own
mail: it passes the same authentication and duplicate checks, and needs no customer. Bounces, feedback reports and auto-replies are recognised whoever sent them, but a bounce is
acted on only when it names one of our messages (anyone can write a DSN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.intake.commands import is_intake_address
from service.intake.mime import Letter, decode_part

_REPORT_TYPES = {"multipart/report", "message/delivery-status", "message/feedback-report",
                 "message/global-delivery-status", "message/disposition-notification"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounces?|double-bounce)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|returned mail|delivery (status notification|failure|failed|has failed)"
    r"|mail delivery (failed|failure|subsystem)|failure notice|delivery failure|non[- ]?recapitabil"
    r"|mancato recapito|messaggio non recapitato|impossibile recapitare|unzustellbar|non remis"
    r"|no se puede entregar|mail system error|returned to sender",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|answer)|autoreply|auto:|out of (the )?office|ooo\b|away from"
    r"|on vacation|vacation( reply)?\b|risposta automatica|fuori (sede|ufficio)|assen(te|za)|in ferie"
    r"|abwesenheit|automatische antwort|réponse automatique|absence|respuesta automática|fuera de la oficina"
    r"|automatisch antwoord|afwezig)",
    re.I,
)
_PRECEDENCE_AUTO = {"bulk", "junk", "list", "auto_reply"}
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_QMAIL_RECIPIENT = re.compile(r"^<([\w.+'-]+@[\w-]+(?:\.[\w-]+)+)>:", re.M)
_ORIGINAL_MARKER = re.compile(r"^(-+ ?(Below this line|This is a copy|Original message|Undelivered message)|"
                              r"Return-Path:|Received:)", re.I | re.M)
_RECIPIENT_FIELD = re.compile(r"^(?:final|original)-recipient:\s*(?:rfc822;)?\s*(\S+)", re.I | re.M)
_FEEDBACK_FIELD = re.compile(r"^original-rcpt-to:\s*(\S+)", re.I | re.M)
_MSGID = re.compile(r"<[^<>\s]+>")
# Text of a report searched for the Message-ID of the message it returns: enough for any header block.
_REPORT_SCAN_CHARS = 100_000


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: why a message is ignored (None: accepted), and what a bounce or complaint reports."""

    reason: str | None
    bounced: tuple[str, ...] = ()
    complained: tuple[str, ...] = ()
    # Our Message-IDs a bounce or complaint names: its addresses count only for the emails these were sent to.
    reports_on: tuple[str, ...] = ()
    # The reason in words: for `unauthenticated`, the result that failed.
    detail: str | None = None
    # The trusted Authentication-Results read for a rep's mail.
    sender_auth: str | None = None


def is_bounce(letter: Letter) -> bool:
    """DSNs, feedback reports and the many home-made bounce formats."""
    if _REPORT_TYPES.intersection(letter.content_types):
        return True
    if letter.header("X-Failed-Recipients"):
        return True
    if letter.sender and _DAEMONS.match(letter.sender.email):
        return True
    return bool(_BOUNCE_SUBJECT.search(letter.subject)) and letter.return_path in ("", None)


def is_auto_reply(letter: Letter, *, subject_counts: bool = True) -> bool:
    """RFC 3834 and the headers auto-responders use in practice; their subjects too unless `subject_counts` is off.

    A subject word is not an auto-reply ("Absence management demo - recap"): for a registered rep's mail to a
    customer only the headers may say so.
    """
    auto_submitted = letter.header("Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if letter.header("X-Autoreply") or letter.header("X-Autorespond") or letter.header("X-Autoresponse"):
        return True
    if letter.header("Precedence").lower() in _PRECEDENCE_AUTO or letter.header("List-Id"):
        return True
    return subject_counts and bool(_AUTO_SUBJECT.search(letter.subject))


def is_own_mail(letter: Letter, intake_address: str, message_id_domain: str, *, replies_count: bool = True) -> bool:
    """Mail we sent, or (unless `replies_count` is off) a reply to it: never a trigger, or Keepwarm would talk to
    itself. A registered rep writing to a customer in a thread where our email once went is a new note, not ours.
    """
    if letter.sender and is_intake_address(letter.sender.email, intake_address):
        return True
    if _is_ours(letter.message_id or "", message_id_domain):
        return True
    return replies_count and any(_is_ours(i, message_id_domain) for i in letter.in_reply_to + letter.references)


def answered_ids(letter: Letter, message_id_domain: str) -> tuple[str, ...]:
    """Our Message-IDs a reply names in In-Reply-To, then References (newest first): what a rep's answer is about."""
    named = list(letter.in_reply_to) + list(reversed(letter.references))
    return tuple(dict.fromkeys(i for i in named if _is_ours(i, message_id_domain)))


def _is_ours(message_id: str, message_id_domain: str) -> bool:
    return message_id.lower().endswith(f"@{message_id_domain}>")


def our_messages_named(letter: Letter, message_id_domain: str) -> tuple[str, ...]:
    """Our Message-IDs a bounce or complaint names: in its threading headers, the message or headers it returns,
    or its text (qmail and home-made formats quote the original inline). Its own Message-ID does not count.
    """
    found = list(letter.in_reply_to + letter.references) + _MSGID.findall(letter.header("X-Original-Message-ID"))
    for part in letter.message.walk():
        if part is not letter.message:
            found += _MSGID.findall(str(part.get("Message-ID", "")))
        if part.get_content_maintype() == "text":
            found += _MSGID.findall(_report_text(part)[:_REPORT_SCAN_CHARS])
    return tuple(dict.fromkeys(i for i in found if _is_ours(i, message_id_domain)))


def customer_hold(customer_count: int, cap: int) -> str | None:
    """`too_many_customers` above the cap (0: none): nothing goes to the customers until the rep confirms.
    (The reading also holds `typed_customers`: addresses the rep typed in a note to Keepwarm alone.)"""
    return "too_many_customers" if cap and customer_count > cap else None


def bounced_addresses(letter: Letter) -> tuple[str, ...]:
    """Addresses a bounce says could not be reached, from structured fields first, else from its text."""
    found = [a.strip().lower() for a in letter.header("X-Failed-Recipients").split(",") if "@" in a]
    for part in letter.message.walk():
        if part.get_content_type() in {"message/delivery-status", "message/global-delivery-status"}:
            found += [a.lower().strip("<>;") for a in _RECIPIENT_FIELD.findall(_report_text(part))]
    if not found:
        found = [a.lower() for a in _QMAIL_RECIPIENT.findall(letter.text[:8000])]
    if not found:
        found = [a.lower() for a in _ADDRESS.findall(_before_original(letter.text[:8000]))]
    return tuple(dict.fromkeys(a for a in found if "@" in a))


def _before_original(text: str) -> str:
    """The bounce's own explanation, without the copy of our message that follows it."""
    match = _ORIGINAL_MARKER.search(text)
    return text[:match.start()] if match else text


def complained_addresses(letter: Letter) -> tuple[str, ...]:
    """Recipients who reported our email as spam (ARF feedback reports)."""
    found = []
    for part in letter.message.walk():
        if part.get_content_type() == "message/feedback-report":
            found += [a.lower().strip("<>") for a in _FEEDBACK_FIELD.findall(_report_text(part))]
    return tuple(dict.fromkeys(found))


def _report_text(part) -> str:
    """The text of a report part, whose payload the parser may hold as header blocks or as bytes."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(p) for p in payload)
    return decode_part(part)
