"""Won, lost or unknown: weighed phrases, with negation ("didn't sign") and hedges ("if they sign") in scope."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.notes.model import Evidence
from service.notes.text import Text, is_concord, is_hypothetical, is_negated, is_process

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
        if self.still_open and not self.won and not self.lost - self.deferral:
            return "unknown"  # "no decision yet": reasons and a "let's talk again" along the way are not a loss
        lost = self.lost + lost_bonus
        if self.next_steps:
            lost -= self.deferral  # "we'll reconnect in two weeks" in a list of next steps is a follow-up, not a loss
        if self.won > lost + _MARGIN:
            return "won"
        if lost > 0 and lost >= self.won:
            return "lost"
        return "won" if self.won > 0 else "unknown"


def score_outcome(text: Text, source: str = "note") -> OutcomeScore:
    """Weigh every won and lost phrase of `text`.

    Each stretch of text counts once per side: where several phrases match overlapping words ("hanno firmato"
    and "firmato"), the heaviest one stands for them. A bare "signed" (a phrase tagged `bare`) says nothing about
    whom the customer signed with, so it counts for nothing when the text says they chose another supplier.
    """
    score = OutcomeScore()
    opening = text.phrases.still_open.search(text.clean)
    score.still_open = bool(opening and not is_negated(text, opening.start()))
    score.next_steps = bool(text.phrases.next_steps.search(text.clean))
    other_vendor = _chose_another_supplier(text)
    won = [(weight, match) for weight, pattern, bare in text.possible_items(text.phrases.won, 1) if not (bare and other_vendor)
           for match in pattern.finditer(text.clean)]
    for weight, match in _heaviest_per_span(won):
        _weigh_won(text, match, weight, score, source)
    lost = [(weight, match, False) for weight, pattern in text.possible_items(text.phrases.lost, 1)
            for match in pattern.finditer(text.clean)]
    lost += [(weight, match, True) for weight, pattern in text.possible_items(text.phrases.deferral, 1)
             for match in pattern.finditer(text.clean)]
    for weight, match, deferral in _heaviest_per_span(lost):
        before = score.lost
        _weigh_lost(text, match, weight, score, source)
        if deferral:
            score.deferral += score.lost - before
    return score


def _heaviest_per_span(found: list[tuple]) -> list[tuple]:
    """The matches that do not overlap a heavier (or earlier, equally heavy) one: one vote per stretch of text."""
    kept: list[tuple] = []
    for item in sorted(found, key=lambda item: (-item[0], item[1].start())):
        match = item[1]
        if all(match.end() <= other[1].start() or match.start() >= other[1].end() for other in kept):
            kept.append(item)
    return sorted(kept, key=lambda item: item[1].start())


def _chose_another_supplier(text: Text) -> bool:
    """True when the text says the customer went with someone else ("signed with Globex", "hanno scelto X")."""
    for pattern in text.possible(text.phrases.other_supplier):
        for match in pattern.finditer(text.clean):
            if not (is_negated(text, match.start()) or is_hypothetical(text, match.start())):
                return True
    return False


def _weigh_won(text: Text, match, weight: float, score: OutcomeScore, source: str) -> None:
    """A won phrase counts for won, or for lost when negated ("haven't signed"); a hedge counts for nothing."""
    if is_hypothetical(text, match.start()) or is_process(text, match.start(), match.end()):
        return
    value = "lost" if is_negated(text, match.start()) else "won"
    if value == "won":
        score.won += weight
    else:
        score.lost += weight
    score.evidence.append(Evidence("outcome", text.original[match.start():match.end()], match.start(), match.end(), value, source))


def _weigh_lost(text: Text, match, weight: float, score: OutcomeScore, source: str) -> None:
    """A lost phrase counts for lost unless negated ("not lost") or hedged; a negation that merely agrees with a
    negative phrase ("non c'era niente da fare", Italian negative concord) does not flip it."""
    if is_hypothetical(text, match.start()):
        return
    if is_negated(text, match.start()) and not is_concord(text, match.group()):
        return
    score.lost += weight
    score.evidence.append(Evidence("outcome", text.original[match.start():match.end()], match.start(), match.end(), "lost", source))
