"""From raw bytes to a `Reading`: read the MIME, pass the gate, find the customers, understand the note.

Pure: everything it needs to know about the world comes in through a `Directory`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.intake import gate
from service.intake.authentication import check_sender, refusal
from service.intake.commands import is_intake_address, read_commands
from service.intake.mime import Letter, read_letter, read_people, synthetic_message_id
from service.intake.quotes import Forward, Person, find_forward, find_reply, strip_quotes
from service.notes import Commands, NoteReading, understand
from service.notes.answers import read_answer
from service.notes.llm import LLMConfig, ask, second_opinion
from service.settings import Settings


@dataclass(frozen=True)
class RepInfo:
    id: int | None
    email: str
    name: str
    timezone: str


class Directory(Protocol):
    """What the reading needs to know from the database."""

    def rep(self, address: str) -> RepInfo | None: ...

    def seen(self, message_id: str) -> bool: ...


@dataclass
class Reading:
    """What Keepwarm made of one email: the `keepwarm parse` contract plus what planning needs."""

    message_id: str
    accepted: bool
    ignored_reason: str | None
    rep: dict | None
    customers: list[dict]
    outcome: str
    cause: str | None
    reasons: list[str]
    recontact_on: str | None
    decision_makers: list[dict]
    note: str
    language: str
    confidence: float
    rep_id: int | None = None
    subject: str = ""
    sent_at: str | None = None
    forwarded: bool = False
    # The rep wrote to the customer directly (a BCC'd recap): replies belong in that thread.
    to_customer: bool = False
    commands: dict | None = None
    bounced: list[str] = field(default_factory=list)
    complained: list[str] = field(default_factory=list)
    # Our Message-IDs a bounce or complaint names: its addresses are acted on only for the emails these went to.
    reports_on: list[str] = field(default_factory=list)
    # The gate's reason in words: for `unauthenticated`, the result that failed.
    ignored_detail: str | None = None
    # The trusted Authentication-Results read for a rep's mail, e.g. "dmarc=pass header.from=… (… by mx…)".
    sender_auth: str | None = None
    # `too_many_customers` (KEEPWARM_MAX_CUSTOMERS_PER_MESSAGE): planning holds the customer emails for the rep.
    hold: str | None = None
    evidence: list[dict] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    # Per field, how sure the reader is (calibrated on the dev split): planning holds customer emails below it.
    confidences: dict[str, float] = field(default_factory=dict)
    # The fields read with less confidence than their calibrated threshold.
    unsure: list[str] = field(default_factory=list)
    # The rep asked for the recontact in so many words: planned whatever the cause (see NoteReading).
    recontact_asked: bool = False
    # A registered rep's reply to our own emails: the Message-IDs it answers (In-Reply-To first), and what the
    # rep's words above the quote ask for (notes.answers.Answer.to_json). Such a reading records no outcome.
    answers: list[str] = field(default_factory=list)
    answer: dict | None = None

    def to_json(self) -> dict[str, Any]:
        # Every field is already JSON-shaped (str, list, dict): a shallow dict, not asdict's deep copy, which
        # cost a quarter of the poller's recording time.
        return {name: getattr(self, name) for name in _READING_FIELDS}


_READING_FIELDS = tuple(f.name for f in fields(Reading))


def read_raw(raw: bytes, settings: Settings, directory: Directory, *, now: datetime | None = None) -> Reading:
    """Everything Keepwarm understands about one raw email."""
    letter = read_letter(raw)
    message_id = letter.message_id or synthetic_message_id(raw)
    rep = directory.rep(letter.sender.email) if letter.sender else None
    forward = _forward_in(letter)
    note = forward.note if forward else strip_quotes(letter.text)
    answers = _answers(letter, settings, rep)
    customers = [] if answers else _customers(letter, forward, settings, note)
    commands = read_commands(_addressed_to(letter), settings.intake_address)
    understood = NoteReading() if answers else _understand(letter, note, forward, rep, settings, commands, now,
                                                           directory)
    verdict = _judge_answer(letter, settings, message_id, directory) if answers else \
        _judge(letter, settings, rep, customers, message_id, directory)
    return Reading(
        message_id=message_id,
        accepted=verdict.reason is None,
        ignored_reason=verdict.reason,
        rep={"email": rep.email, "name": rep.name} if rep else None,
        rep_id=rep.id if rep else None,
        customers=[{"email": c.email, "name": c.name} for c in customers],
        outcome=understood.outcome,
        cause=understood.cause,
        reasons=list(understood.reasons),
        recontact_on=understood.recontact_on.isoformat() if understood.recontact_on else None,
        recontact_asked=understood.recontact_asked,
        decision_makers=[{"name": d.name, "role": d.role, "role_as_written": d.written}
                         for d in understood.decision_makers],
        note=note,
        language=understood.language,
        confidence=round(understood.confidence, 2),
        confidences=dict(understood.confidences),
        unsure=list(understood.unsure),
        subject=letter.subject,
        sent_at=(letter.date or now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        forwarded=forward is not None,
        to_customer=any(_is_external(p.email, settings) for p in letter.recipients),
        commands=asdict(commands) if commands else None,
        bounced=list(verdict.bounced),
        complained=list(verdict.complained),
        reports_on=list(verdict.reports_on),
        ignored_detail=verdict.detail,
        sender_auth=verdict.sender_auth,
        hold=gate.customer_hold(len(customers), settings.max_customers_per_message)
        or ("typed_customers" if customers and not _addressed_customers(letter, forward, settings) else None),
        evidence=[asdict(e) for e in understood.evidence],
        in_reply_to=list(letter.in_reply_to),
        references=list(letter.references),
        answers=list(answers),
        answer=_read_answer(letter, note, rep, settings, now) if answers else None,
    )


def _answers(letter: Letter, settings: Settings, rep: RepInfo | None) -> tuple[str, ...]:
    """Our Message-IDs this email answers, when it is a registered rep's reply to Keepwarm alone; else none.

    A rep writing to a customer in a thread where our email went is a new note (the gate's own rule)."""
    if rep is None or any(_is_external(p.email, settings) for p in letter.recipients):
        return ()
    if gate.is_own_mail(letter, settings.intake_address, settings.message_id_domain, replies_count=False):
        return ()
    return gate.answered_ids(letter, settings.message_id_domain)


def _judge_answer(letter: Letter, settings: Settings, message_id: str, directory: Directory) -> gate.Verdict:
    """A rep's answer: automatic replies, then the same authentication and duplicate checks as a note."""
    if gate.is_auto_reply(letter):
        return gate.Verdict("auto_reply")
    check = check_sender(letter, settings.trusted_authserv_ids)
    if refused := refusal(check, require_pass=settings.require_sender_auth):
        return gate.Verdict("unauthenticated", detail=refused, sender_auth=check.detail)
    if directory.seen(message_id):
        return gate.Verdict("duplicate", sender_auth=check.detail)
    return gate.Verdict(None, sender_auth=check.detail)


def _read_answer(letter: Letter, note: str, rep: RepInfo | None, settings: Settings, now: datetime | None) -> dict:
    """What the rep's words ask for, their dates read on the rep's calendar."""
    zone = _zone(rep.timezone if rep else settings.timezone)
    today = (letter.date or now or datetime.now(UTC)).astimezone(zone).date()
    return read_answer(note, today).to_json()


def _judge(letter: Letter, settings: Settings, rep: RepInfo | None, customers: list[Person], message_id: str,
           directory: Directory) -> gate.Verdict:
    """The gate, in order; the first reason that applies wins."""
    if gate.is_bounce(letter):
        return _bounce(letter, settings)
    # A registered rep writing to a customer: only headers may call it automatic, and our old thread is theirs too.
    rep_to_customer = rep is not None and bool(customers)
    if gate.is_auto_reply(letter, subject_counts=not rep_to_customer):
        return gate.Verdict("auto_reply")
    if gate.is_own_mail(letter, settings.intake_address, settings.message_id_domain, replies_count=not rep_to_customer):
        return gate.Verdict("own_mail")
    if rep is None:
        return gate.Verdict("unknown_sender")
    check = check_sender(letter, settings.trusted_authserv_ids)
    if refused := refusal(check, require_pass=settings.require_sender_auth):
        return gate.Verdict("unauthenticated", detail=refused, sender_auth=check.detail)
    if not customers:
        return gate.Verdict("no_customer", sender_auth=check.detail)
    if directory.seen(message_id):
        return gate.Verdict("duplicate", sender_auth=check.detail)
    return gate.Verdict(None, sender_auth=check.detail)


def _bounce(letter: Letter, settings: Settings) -> gate.Verdict:
    """A bounce or complaint names addresses only when it is about one of our messages: anyone can write a DSN."""
    ours = gate.our_messages_named(letter, settings.message_id_domain)
    if not ours:
        return gate.Verdict("bounce", detail="names none of our messages: not acted on")
    complained = gate.complained_addresses(letter)
    bounced = [a for a in gate.bounced_addresses(letter) + complained if _is_external(a, settings)]
    return gate.Verdict("bounce", tuple(dict.fromkeys(bounced)), complained, reports_on=ours)


def _forward_in(letter: Letter) -> Forward | None:
    """A forward written inline in the body, else an email attached as message/rfc822."""
    forward = find_forward(letter.text)
    if forward is not None or not letter.attached:
        return forward
    inner = letter.attached[0]
    return Forward(note=strip_quotes(letter.text), sender=inner.sender, to=inner.to, cc=inner.cc,
                   date=inner.date, subject=inner.subject, body=strip_quotes(inner.text))


def _customers(letter: Letter, forward: Forward | None, settings: Settings, note: str = "") -> list[Person]:
    """External recipients of the email, plus the external correspondents of a forwarded one; for a note written
    to Keepwarm alone ("call with Luca Mancini, luca@mancini.example: not now"), the addresses the rep typed."""
    people = list(letter.recipients)
    if forward is not None:
        people += ([forward.sender] if forward.sender else []) + list(forward.to) + list(forward.cc)
    external = [p for p in people if _is_external(p.email, settings)]
    if not external and forward is None:
        external = [Person(None, address.lower()) for address in _TYPED_ADDRESS.findall(note)
                    if _is_external(address, settings)]
    by_email: dict[str, Person] = {}
    for person in external:
        if person.email not in by_email or (person.name and not by_email[person.email].name):
            by_email[person.email] = person
    return list(by_email.values())


def _addressed_customers(letter: Letter, forward: Forward | None, settings: Settings) -> bool:
    """Whether the customers come from headers (recipients, a forward's header) rather than the note's text."""
    return forward is not None or any(_is_external(p.email, settings) for p in letter.recipients)


_TYPED_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.I)


def _is_external(address: str, settings: Settings) -> bool:
    domain = address.rpartition("@")[2].lower()
    internal = any(domain == d or domain.endswith("." + d) for d in settings.own_domains)
    return not internal and not is_intake_address(address, settings.intake_address)


def _addressed_to(letter: Letter) -> list[str]:
    """Where commands may stand: the envelope headers, To and Cc, and Bcc when a client kept it in the copy."""
    bcc = [p.email for p in read_people(letter.message, "Bcc")]
    return list(letter.delivered_to) + [p.email for p in letter.recipients] + bcc


@dataclass(frozen=True)
class NoteInput:
    """What the note reader is given of one email (training reads the labelled corpora through this too)."""

    note: str
    sent_at: datetime
    tz: ZoneInfo
    forwarded: str | None
    commands: Commands | None
    subject: str


def note_input(raw: bytes, settings: Settings, directory: Directory, *, now: datetime | None = None) -> NoteInput:
    """The rep's words, the forwarded answer, the commands and the rep's zone of one raw email."""
    letter = read_letter(raw)
    rep = directory.rep(letter.sender.email) if letter.sender else None
    forward = _forward_in(letter)
    note = forward.note if forward else strip_quotes(letter.text)
    commands = read_commands(_addressed_to(letter), settings.intake_address)
    return _note_input(letter, note, forward, rep, settings, commands, now, directory)


def _note_input(letter: Letter, note: str, forward: Forward | None, rep: RepInfo | None, settings: Settings,
                commands: Commands | None, now: datetime | None, directory: Directory) -> NoteInput:
    answer = forward.body if forward else _quoted_answer(letter, settings, directory)
    return NoteInput(note, letter.date or now or datetime.now(UTC), _zone(rep.timezone if rep else settings.timezone),
                     answer, commands, letter.subject)


def _quoted_answer(letter: Letter, settings: Settings, directory: Directory) -> str | None:
    """The customer's message a reply quotes ("On 26 Oct, Imran <i@…> wrote: > the board has frozen all spend"),
    read as a forwarded answer is: a rep who answers the customer and copies Keepwarm tells the outcome in the
    customer's words as often as in their own, and Outlook's replies (a "From: … Sent: …" block) were already read
    so. Only a message an outside address wrote (never the rep's own, a colleague's or any rep's, whatever their
    domain), and, when the email goes to outside recipients, one of theirs or their domain's: a reply to one
    customer quoting somebody else is not that customer's answer."""
    reply = find_reply(letter.text)
    if reply is None or reply.sender is None:
        return None
    author = reply.sender.email
    if not _is_external(author, settings) or directory.rep(author) is not None \
            or (letter.sender is not None and author == letter.sender.email):
        return None
    outside = [person.email for person in letter.recipients if _is_external(person.email, settings)]
    domain = author.rpartition("@")[2]
    if outside and not any(email == author or email.rpartition("@")[2] == domain for email in outside):
        return None
    return reply.body


def _understand(letter: Letter, note: str, forward: Forward | None, rep: RepInfo | None, settings: Settings,
                commands: Commands | None, now: datetime | None, directory: Directory) -> NoteReading:
    given = _note_input(letter, note, forward, rep, settings, commands, now, directory)
    reading = understand(given.note, sent_at=given.sent_at, tz=given.tz, forwarded=given.forwarded,
                         commands=given.commands, subject=given.subject)
    if settings.llm_url:
        config = LLMConfig(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
        answer = ask(config, given.note, today=given.sent_at.astimezone(given.tz).date(), subject=given.subject,
                     forwarded=given.forwarded)
        reading = second_opinion(reading, answer, given.note)
    return reading


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
