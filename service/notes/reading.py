"""The reading of a note (the contract), and a first simple reader; the notes issue makes it good."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

OUTCOMES = ("won", "lost", "unknown")
CAUSES = ("external", "internal", "unknown")
REASONS = ("budget", "timing", "consult", "competitor", "no_need", "price", "unconvinced", "relationship", "fit", "other")


@dataclass(frozen=True)
class Commands:
    """What plus-address commands said (`followup+lost+3m@…`); they override everything read from text."""

    outcome: str | None = None
    recontact: str | None = None  # "3m", "2w", "90d" or an ISO date "2027-03-01"
    noemail: bool = False


@dataclass(frozen=True)
class DecisionMaker:
    name: str | None
    role: str | None


@dataclass(frozen=True)
class Evidence:
    """Why a field got its value: the phrase read and where it stands in the text it was read from."""

    field: str
    phrase: str
    start: int
    end: int
    value: str


@dataclass
class NoteReading:
    outcome: str = "unknown"
    cause: str | None = None
    reasons: list[str] = field(default_factory=list)
    recontact_on: date | None = None
    decision_makers: list[DecisionMaker] = field(default_factory=list)
    language: str = "en"
    confidence: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)


_LOST = re.compile(r"\b(lost|no budget|not now|perso|non (?:ora|adesso))\b", re.I)
_WON = re.compile(r"\b(won|signed|vinto|firmato)\b", re.I)


def understand(
    note: str,
    *,
    sent_at: datetime,
    tz: ZoneInfo,
    forwarded: str | None = None,
    commands: Commands | None = None,
) -> NoteReading:
    """Read the rep's note (and the forwarded customer text, if any) into a NoteReading."""
    reading = NoteReading()
    text = note if note.strip() else (forwarded or "")
    if _LOST.search(text):
        reading.outcome, reading.cause, reading.confidence = "lost", "unknown", 0.3
    elif _WON.search(text):
        reading.outcome, reading.confidence = "won", 0.3
    if commands and commands.outcome:
        reading.outcome = commands.outcome
    return reading
