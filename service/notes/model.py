"""The reading of a note (the contract shared with intake and planning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

OUTCOMES = ("won", "lost", "unknown")
CAUSES = ("external", "internal", "unknown")
REASONS = ("budget", "timing", "consult", "competitor", "no_need", "price", "unconvinced", "relationship", "fit", "other")
EXTERNAL_REASONS = frozenset({"budget", "timing", "consult", "no_need"})
INTERNAL_REASONS = frozenset({"unconvinced", "relationship"})


@dataclass(frozen=True)
class Commands:
    """What plus-address commands said (`followup+lost+3m@…`); they override everything read from text."""

    outcome: str | None = None
    recontact: str | None = None  # "3m", "2w", "90d" or an ISO date "2027-03-01"
    noemail: bool = False


@dataclass(frozen=True)
class DecisionMaker:
    """Someone else in the customer's decision: a name, the normalised role ("cfo", "board") and the role as the
    note writes it ("their Finance Director"), without a leading article. Two readings of one person are equal
    whatever the words around the role."""

    name: str | None
    role: str | None
    written: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Evidence:
    """Why a field got its value: the phrase read and where it stands in the text it was read from."""

    field: str
    phrase: str
    start: int
    end: int
    value: str
    source: str = "note"  # "note", "forwarded" or "command" (a plus-address has no span)


@dataclass
class NoteReading:
    outcome: str = "unknown"
    cause: str | None = None
    reasons: list[str] = field(default_factory=list)
    recontact_on: date | None = None
    # The rep asked for that recontact in so many words (a plus-address date or delay, a labelled line, a recontact
    # verb naming the date in their note): planning writes it whatever the cause.
    recontact_asked: bool = False
    decision_makers: list[DecisionMaker] = field(default_factory=list)
    language: str = "en"
    confidence: float = 0.0  # the lowest of `confidences`
    # Per field ("outcome", and for a lost sale "cause" and "reasons"): the probability that the value is right,
    # calibrated on the dev split (see `keepwarm eval-notes`); the rep's explicit word counts as 0.99.
    confidences: dict[str, float] = field(default_factory=dict)
    # The fields whose confidence is under the threshold calibrated for them: customer emails planned from
    # such a reading wait for the rep's confirmation (unless the admin's policy sends regardless).
    unsure: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def why(self) -> list[str]:
        """One line per evidence, for the rep's summary: "I read 'no budget until April' as budget"."""
        return [f"I read '{item.phrase}' as {item.field} → {item.value}" for item in self.evidence]
