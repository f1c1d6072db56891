"""Scoring `understand` against the labelled notes corpus (tests/notes), with a crude .eml loader of its own.

    python -m service.notes.evaluate [tests/notes]

The loader is a stand-in until the intake pipeline reads MIME and strips quotes for real.
"""

from __future__ import annotations

import html
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from service.notes.model import Commands, NoteReading
from service.notes.reading import understand

FIELDS = ("outcome", "cause", "reasons", "recontact_on", "decision_makers", "language")
REP_TIMEZONES = {
    "anna.bianchi@acme.example": "Europe/Rome", "anna@acme.example": "Europe/Rome",
    "luca.moretti@acme.example": "Europe/Rome", "tom.baker@acme.example": "Europe/London",
    "sarah.chen@acme.example": "America/New_York",
}
_QUOTE_START = re.compile(
    r"^(?:>|On .*wrote:|Il giorno .*|.*ha scritto:|.*wrote:|-{3,}\s*(?:Original|Forwarded|Messaggio)|"
    r"Inizio messaggio inoltrato|Begin forwarded message|From:|Da:|_{10,})",
    re.I | re.M,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|i|inoltro|tr)\s*:", re.I)
_FORWARD_MARK = re.compile(r"forwarded message|inoltrato|begin forwarded|original message", re.I)
_COMMAND_ADDRESS = re.compile(r"^followup\+([^@]+)@", re.I)
_SPAN_COMMAND = re.compile(r"^(?:\d{1,4}[dwmy]|20\d\d-\d\d-\d\d)$", re.I)


@dataclass
class Miss:
    file: str
    field: str
    expected: object
    got: object


@dataclass
class Report:
    correct: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)

    def accuracy(self, name: str) -> float:
        """Share of cases where the field was right."""
        return self.correct.get(name, 0) / self.total[name] if self.total.get(name) else 0.0


# ---- comparing -----------------------------------------------------------------------------------------------

def _people_key(people) -> frozenset:
    """Decision makers as a set of (lowercased name or None, lowercased role or None)."""
    def low(value):
        return value.strip().lower() if value else None
    return frozenset((low(_get(person, "name")), low(_get(person, "role"))) for person in people or [])


def _get(item, name: str):
    """A field of a dict or of a dataclass."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name)


def _got(reading: NoteReading, name: str):
    """The reading's value of a field, in the form the labels use."""
    value = getattr(reading, name)
    if name == "recontact_on":
        return value.isoformat() if value else None
    if name == "decision_makers":
        return [{"name": person.name, "role": person.role} for person in value]
    return value


def _same(name: str, expected, got) -> bool:
    """Field equality as the issue defines it."""
    if name == "reasons":
        return set(expected or []) == set(got or [])
    if name == "decision_makers":
        return _people_key(expected) == _people_key(got)
    return expected == got


def evaluate(cases: list[tuple[str, dict, NoteReading]]) -> Report:
    """Per-field accuracy of the readings against the labels, with every miss."""
    report = Report()
    for name, expected, reading in cases:
        for field_name in FIELDS:
            if field_name not in expected:
                continue
            got = _got(reading, field_name)
            report.total[field_name] = report.total.get(field_name, 0) + 1
            if _same(field_name, expected[field_name], got):
                report.correct[field_name] = report.correct.get(field_name, 0) + 1
            else:
                report.misses.append(Miss(name, field_name, expected[field_name], got))
    return report


def format_report(report: Report) -> str:
    """The table `field  correct/total  accuracy%`, then every miss."""
    lines = [f"{'field':<16} {'correct/total':>13}  accuracy%"]
    for name in FIELDS:
        if report.total.get(name):
            share = f"{report.correct.get(name, 0)}/{report.total[name]}"
            lines.append(f"{name:<16} {share:>13}  {100 * report.accuracy(name):8.1f}")
    if report.misses:
        lines.append("")
        lines.append("misses:")
    for miss in report.misses:
        lines.append(f"  {miss.file}  {miss.field}: expected {json.dumps(miss.expected, ensure_ascii=False)}"
                     f"  got {json.dumps(miss.got, ensure_ascii=False)}")
    return "\n".join(lines)


# ---- the crude loader ------------------------------------------------------------------------------------------

@dataclass
class LoadedNote:
    """What `understand` needs from one .eml file."""

    note: str
    forwarded: str | None
    sent_at: datetime
    tz: ZoneInfo
    commands: Commands


def _body_text(message: EmailMessage) -> str:
    """The text/plain part, or the HTML part with its tags stripped."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        content = re.sub(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h\d)>", "\n", content)
        content = html.unescape(re.sub(r"<[^>]+>", "", content))
    return content


def _split_quoted(body: str, subject: str) -> tuple[str, str | None]:
    """The rep's words, and the forwarded text when the message is a forward (quoted history is dropped)."""
    match = _QUOTE_START.search(body)
    if not match:
        return body, None
    rest = body[match.start():]
    is_forward = bool(_FORWARD_SUBJECT.match(subject)) or bool(_FORWARD_MARK.search(match.group()))
    return body[:match.start()], rest if is_forward else None


def _commands(message: EmailMessage) -> Commands:
    """Plus-address commands from To/Cc/Bcc: followup+lost+3m@…"""
    outcome = recontact = None
    noemail = False
    addresses = getaddresses([str(message.get(h, "")) for h in ("To", "Cc", "Bcc")])
    for _, address in addresses:
        match = _COMMAND_ADDRESS.match(address)
        for token in match.group(1).split("+") if match else []:
            token = token.lower()
            outcome = token if token in {"won", "lost", "unknown"} else outcome
            recontact = token if _SPAN_COMMAND.match(token) else recontact
            noemail = noemail or token == "noemail"
    return Commands(outcome=outcome, recontact=recontact, noemail=noemail)


def load_eml(path: Path) -> LoadedNote:
    """Read one corpus .eml file."""
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    note, forwarded = _split_quoted(_body_text(message), str(message.get("Subject", "")))
    sender = getaddresses([str(message.get("From", ""))])[0][1].lower()
    tz = ZoneInfo(REP_TIMEZONES.get(sender, "UTC"))
    return LoadedNote(note, forwarded, parsedate_to_datetime(str(message["Date"])), tz, _commands(message))


def read_corpus(folder: Path) -> list[tuple[str, dict, NoteReading]]:
    """Every labelled case of the corpus, read."""
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    cases = []
    for name in sorted(expected):
        path = folder / "cases" / name
        if path.exists():
            loaded = load_eml(path)
            reading = understand(loaded.note, sent_at=loaded.sent_at, tz=loaded.tz, forwarded=loaded.forwarded,
                                 commands=loaded.commands)
            cases.append((name, expected[name], reading))
    return cases


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table for a corpus folder."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "tests/notes")
    print(format_report(evaluate(read_corpus(folder))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
