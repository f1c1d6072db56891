"""From raw bytes to a `Reading`: read the MIME, pass the gate, find the customers, understand the note.

Pure: everything it needs to know about the world comes in through a `Directory`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.intake import gate
from service.intake.commands import is_intake_address, read_commands
from service.intake.mime import Letter, read_letter, read_people, synthetic_message_id
from service.intake.quotes import Forward, Person, find_forward, strip_quotes
from service.notes import Commands, NoteReading, understand
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
    evidence: list[dict] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

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
    customers = _customers(letter, forward, settings)
    commands = read_commands(_addressed_to(letter), settings.intake_address)
    note = forward.note if forward else strip_quotes(letter.text)
    understood = _understand(letter, note, forward, rep, settings, commands, now)
    reason, bounced, complained = _judge(letter, settings, rep, customers, message_id, directory)
    return Reading(
        message_id=message_id,
        accepted=reason is None,
        ignored_reason=reason,
        rep={"email": rep.email, "name": rep.name} if rep else None,
        rep_id=rep.id if rep else None,
        customers=[{"email": c.email, "name": c.name} for c in customers],
        outcome=understood.outcome,
        cause=understood.cause,
        reasons=list(understood.reasons),
        recontact_on=understood.recontact_on.isoformat() if understood.recontact_on else None,
        decision_makers=[{"name": d.name, "role": d.role} for d in understood.decision_makers],
        note=note,
        language=understood.language,
        confidence=round(understood.confidence, 2),
        subject=letter.subject,
        sent_at=(letter.date or now or datetime.now(UTC)).astimezone(UTC).isoformat(),
        forwarded=forward is not None,
        to_customer=any(_is_external(p.email, settings) for p in letter.recipients),
        commands=asdict(commands) if commands else None,
        bounced=list(bounced),
        complained=list(complained),
        evidence=[asdict(e) for e in understood.evidence],
        in_reply_to=list(letter.in_reply_to),
        references=list(letter.references),
    )


def _judge(letter: Letter, settings: Settings, rep: RepInfo | None, customers: list[Person], message_id: str,
           directory: Directory) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """The gate, in order; the first reason that applies wins."""
    if gate.is_bounce(letter):
        complained = gate.complained_addresses(letter)
        bounced = [a for a in gate.bounced_addresses(letter) + complained if _is_external(a, settings)]
        return "bounce", tuple(dict.fromkeys(bounced)), complained
    if gate.is_auto_reply(letter):
        return "auto_reply", (), ()
    if gate.is_own_mail(letter, settings.intake_address, settings.message_id_domain):
        return "own_mail", (), ()
    if rep is None:
        return "unknown_sender", (), ()
    if not customers:
        return "no_customer", (), ()
    if directory.seen(message_id):
        return "duplicate", (), ()
    return None, (), ()


def _forward_in(letter: Letter) -> Forward | None:
    """A forward written inline in the body, else an email attached as message/rfc822."""
    forward = find_forward(letter.text)
    if forward is not None or not letter.attached:
        return forward
    inner = letter.attached[0]
    return Forward(note=strip_quotes(letter.text), sender=inner.sender, to=inner.to, cc=inner.cc,
                   date=inner.date, subject=inner.subject, body=strip_quotes(inner.text))


def _customers(letter: Letter, forward: Forward | None, settings: Settings) -> list[Person]:
    """External recipients of the email, plus the external correspondents of a forwarded one."""
    people = list(letter.recipients)
    if forward is not None:
        people += ([forward.sender] if forward.sender else []) + list(forward.to) + list(forward.cc)
    external = [p for p in people if _is_external(p.email, settings)]
    by_email: dict[str, Person] = {}
    for person in external:
        if person.email not in by_email or (person.name and not by_email[person.email].name):
            by_email[person.email] = person
    return list(by_email.values())


def _is_external(address: str, settings: Settings) -> bool:
    domain = address.rpartition("@")[2].lower()
    internal = any(domain == d or domain.endswith("." + d) for d in settings.own_domains)
    return not internal and not is_intake_address(address, settings.intake_address)


def _addressed_to(letter: Letter) -> list[str]:
    """Where commands may stand: the envelope headers, To and Cc, and Bcc when a client kept it in the copy."""
    bcc = [p.email for p in read_people(letter.message, "Bcc")]
    return list(letter.delivered_to) + [p.email for p in letter.recipients] + bcc


def _understand(letter: Letter, note: str, forward: Forward | None, rep: RepInfo | None, settings: Settings,
                commands: Commands | None, now: datetime | None) -> NoteReading:
    sent_at = letter.date or now or datetime.now(UTC)
    return understand(note, sent_at=sent_at, tz=_zone(rep.timezone if rep else settings.timezone),
                      forwarded=forward.body if forward else None, commands=commands)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
