"""Won, lost or unknown: weighed phrases, with negation ("didn't sign") and hedges ("if they sign") in scope."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.notes.model import Evidence
from service.notes.text import Text, is_hypothetical, is_negated

_MARGIN = 0.5


@dataclass
class OutcomeScore:
    """How much the text says the sale was made, and how much it says it was not."""

    won: float = 0.0
    lost: float = 0.0
    still_open: bool = False
    next_steps: bool = False  # a recap of next steps ("prossimi passi", "you'll take it to the CFO")
    deferral: float = 0.0  # the part of `lost` said by "let's reconnect"-type phrases
    evidence: list[Evidence] = field(default_factory=list)

    def decide(self, lost_bonus: float = 0.0) -> str:
        """The outcome the scores point to; `lost_bonus` is what the reasons add."""
        if self.still_open and not self.won and not self.lost:
            return "unknown"  # "no decision yet": reasons mentioned along the way are not a loss
        lost = self.lost + lost_bonus
        if self.next_steps:
            lost -= self.deferral  # "we'll reconnect in two weeks" in a list of next steps is a follow-up, not a loss
        if self.won > lost + _MARGIN:
            return "won"
        if lost > 0 and lost >= self.won:
            return "lost"
        return "won" if self.won > 0 else "unknown"


def score_outcome(text: Text, source: str = "note") -> OutcomeScore:
    """Weigh every won and lost phrase of `text`."""
    score = OutcomeScore()
    opening = text.phrases.still_open.search(text.clean)
    score.still_open = bool(opening and not is_negated(text, opening.start()))
    score.next_steps = bool(text.phrases.next_steps.search(text.clean))
    for weight, pattern in text.phrases.won:
        for match in pattern.finditer(text.clean):
            _weigh_won(text, match, weight, score, source)
    for weight, pattern in text.phrases.lost:
        for match in pattern.finditer(text.clean):
            _weigh_lost(text, match, weight, score, source)
    for weight, pattern in text.phrases.deferral:
        for match in pattern.finditer(text.clean):
            before = score.lost
            _weigh_lost(text, match, weight, score, source)
            score.deferral += score.lost - before
    return score


def _weigh_won(text: Text, match, weight: float, score: OutcomeScore, source: str) -> None:
    """A won phrase counts for won, or for lost when negated ("haven't signed"); a hedge counts for nothing."""
    if is_hypothetical(text, match.start()):
        return
    value = "lost" if is_negated(text, match.start()) else "won"
    if value == "won":
        score.won += weight
    else:
        score.lost += weight
    score.evidence.append(Evidence("outcome", text.original[match.start():match.end()], match.start(), match.end(), value, source))


def _weigh_lost(text: Text, match, weight: float, score: OutcomeScore, source: str) -> None:
    """A lost phrase counts for lost unless negated ("not lost") or hedged."""
    if is_hypothetical(text, match.start()) or is_negated(text, match.start()):
        return
    score.lost += weight
    score.evidence.append(Evidence("outcome", text.original[match.start():match.end()], match.start(), match.end(), "lost", source))
