"""Labelled lines ("Outcome: lost", "Ricontatto: marzo") and plus-address commands, which override the prose."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

from dateutil.relativedelta import relativedelta

from service.notes.dates import resolve_phrase
from service.notes.model import REASONS, Commands, DecisionMaker, Evidence
from service.notes.people import parse_person
from service.notes.phrases import Phrases, all_phrases, compile_phrase
from service.notes.text import Text

_FIELDS = ("outcome", "reasons", "cause", "recontact", "decision_makers")
_ISO_DATE = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b")
_COMMAND_SPAN = re.compile(r"^(\d{1,4})\s*([dwmy])$", re.I)
_LIST_SPLIT = re.compile(r"\s*(?:[,;/+&]|\band\b|\be\b)\s*(?![^()]*\))", re.I)


@dataclass
class Structured:
    """What the labelled lines said; None means the line was absent."""

    outcome: str | None = None
    reasons: list[str] | None = None
    cause: str | None = None
    recontact: date | None = None
    no_recontact: bool = False
    decision_makers: list[DecisionMaker] | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


@cache
def _line_pattern() -> re.Pattern:
    """A labelled line in any language: one named group per field."""
    labels = {name: [] for name in _FIELDS}
    for phrases in all_phrases():
        for name in _FIELDS:
            labels[name].append(phrases.table["structured"]["labels"][name])
    groups = "|".join(rf"(?P<{name}>{'|'.join(alts)})" for name, alts in labels.items())
    return compile_phrase(rf"^[ \t>*\-•]*(?:{groups})[ \t]*[:=][ \t]*(?P<value>[^\n]*?)[ \t]*$", re.I | re.M)


def _value_matches(value: str, key: str) -> bool:
    """True when `value` is one of the words for `key` ("lost", "perso") in some language."""
    return any(re.fullmatch(rf"(?:{p.table['structured']['values'][key]})[.!]?", value, re.I) for p in all_phrases())


def _read_outcome(value: str) -> str | None:
    """"lost" / "perso" → lost."""
    return next((key for key in ("won", "lost", "unknown") if _value_matches(value, key)), None)


def _read_cause(value: str) -> str | None:
    """"internal" / "interna" → internal."""
    return next((key for key in ("internal", "external") if _value_matches(value, key)),
                "unknown" if _value_matches(value, "unknown") else None)


def _read_reason(item: str) -> str | None:
    """One item of a reasons line, by vocabulary name or by a language's words for it."""
    key = item.strip().lower().replace(" ", "_").replace("-", "_")
    if key in REASONS:
        return key
    for match in (re.fullmatch, re.search):  # an exact word first, then a word inside ("approvazione del CdA")
        for phrases in all_phrases():
            for reason, pattern in phrases.table["structured"]["reasons"].items():
                if match(rf"\b(?:{pattern})\b", item.strip(), re.I):
                    return reason
    return None


def _read_reasons(value: str) -> list[str]:
    """"budget, consult" → ["budget", "consult"] in vocabulary order."""
    found = {_read_reason(item) for item in _LIST_SPLIT.split(value) if item.strip()}
    return [reason for reason in REASONS if reason in found]


def _read_recontact(value: str, phrases: Phrases, today: date, day_first: bool) -> tuple[date | None, bool]:
    """"2027-03-01", "in 3 months", "marzo", or "none"; returns (day, says none)."""
    if _value_matches(value, "none"):
        return None, True
    iso = _ISO_DATE.search(value)
    if iso:
        return date(*map(int, iso.groups())), False
    for candidate in (phrases, *all_phrases()):
        day = resolve_phrase(value, candidate, today, day_first) or resolve_phrase("in " + value, candidate, today, day_first)
        if day:
            return day, False
    return None, False


def _read_people(value: str) -> list[DecisionMaker]:
    """"Maria Rossi (CFO); the board" → two decision makers; "none" → []."""
    if _value_matches(value, "none"):
        return []
    people = [parse_person(item) for item in re.split(r"\s*[;,]\s*(?![^()]*\))|\s+\band\b\s+|\s+\be\b\s+", value)]
    return _join_name_and_role([person for person in people if person])


def _join_name_and_role(people: list[DecisionMaker]) -> list[DecisionMaker]:
    """"dott. Marco Ferri, direttore finanziario" was split at the comma: a bare role completes the name before it."""
    joined: list[DecisionMaker] = []
    for person in people:
        previous = joined[-1] if joined else None
        if previous and previous.role is None and person.name is None:
            joined[-1] = DecisionMaker(previous.name, person.role)
        else:
            joined.append(person)
    return joined


def read_structured(text: Text, today: date, day_first: bool) -> Structured:
    """Every labelled line of the note."""
    found = Structured()
    for match in _line_pattern().finditer(text.clean):
        name = next(key for key in _FIELDS if match.group(key))
        value = match.group("value").strip()
        if value and _apply_line(found, name, value, text.phrases, today, day_first):
            found.spans.append((match.start(), match.end()))
            found.evidence.append(Evidence(name if name != "recontact" else "recontact_on", text.original[match.start():match.end()].strip(),
                                           match.start(), match.end(), value))
    return found


def _apply_line(found: Structured, name: str, value: str, phrases: Phrases, today: date, day_first: bool) -> bool:
    """Store one line's value; False when the value means nothing to us."""
    if name == "outcome":
        found.outcome = _read_outcome(value)
        return found.outcome is not None
    if name == "reasons":
        found.reasons = _read_reasons(value)
        return bool(found.reasons)
    if name == "cause":
        found.cause = _read_cause(value)
        return found.cause is not None
    if name == "recontact":
        found.recontact, found.no_recontact = _read_recontact(value, phrases, today, day_first)
        return found.recontact is not None or found.no_recontact
    found.decision_makers = _read_people(value)
    return True


def command_recontact(command: str, today: date) -> date | None:
    """A plus-address recontact: "3m" = +3 months, "2w", "90d", "1y", or an ISO date."""
    iso = _ISO_DATE.fullmatch(command.strip())
    if iso:
        return date(*map(int, iso.groups()))
    span = _COMMAND_SPAN.match(command.strip())
    if not span:
        return None
    amount, unit = int(span.group(1)), span.group(2).lower()
    if unit in "dw":
        return today + timedelta(days=amount * (7 if unit == "w" else 1))
    return today + relativedelta(months=amount * (12 if unit == "y" else 1))


def command_outcome(commands: Commands | None) -> str | None:
    """The outcome a plus-address gave, if it is one we know."""
    outcome = (commands.outcome or "").strip().lower() if commands else ""
    return outcome if outcome in {"won", "lost", "unknown"} else None
