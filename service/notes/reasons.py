"""Why the sale was lost (the fixed vocabulary) and whose doing it was (cause)."""

from __future__ import annotations

from service.notes.model import EXTERNAL_REASONS, INTERNAL_REASONS, REASONS, Evidence
from service.notes.text import Text, is_dismissed, is_hypothetical, is_negated

_WEAK = "_weak"

def find_reasons(text: Text, source: str = "note") -> tuple[list[str], list[Evidence]]:
    """The reasons the text gives, in vocabulary order, with the phrase behind each."""
    found: dict[str, Evidence] = {}
    for reason, patterns in text.phrases.reasons.items():
        evidence = _first_asserted(text, reason, patterns, source)
        if evidence:
            found[reason] = evidence
    for reason, evidence in _lost_on(text, source):
        found.setdefault(reason, evidence)
    _use_fallbacks(found)
    reasons = [reason for reason in REASONS if reason in found]
    return reasons, [found[reason] for reason in reasons]


def _lost_on(text: Text, source: str):
    """"lost on price", "perso per il budget": the word after names the reason in the vocabulary's own words."""
    for match in text.phrases.lost_on.finditer(text.clean):
        for reason, words in text.phrases.reason_words.items():
            if words.match(match.group("word")) and not is_negated(text, match.start()):
                start, end = match.span("word")
                yield reason, Evidence("reasons", text.original[match.start():end], match.start(), end, reason, source)
                break


def _use_fallbacks(found: dict[str, Evidence]) -> None:
    """`<reason>_weak` phrases (bare deferrals such as "next year") count only when nothing else explains the loss."""
    weak = {key: evidence for key, evidence in found.items() if key.endswith(_WEAK)}
    for key in weak:
        del found[key]
    if not found:
        for key, evidence in weak.items():
            reason = key.removesuffix(_WEAK)
            found[reason] = Evidence(evidence.field, evidence.phrase, evidence.start, evidence.end, reason, evidence.source)


def _first_asserted(text: Text, reason: str, patterns, source: str) -> Evidence | None:
    """The first phrase for `reason` that is neither negated, hedged nor waved away."""
    for pattern in patterns:
        for match in pattern.finditer(text.clean):
            if _is_asserted(text, reason, match):
                phrase = text.original[match.start():match.end()]
                return Evidence("reasons", phrase, match.start(), match.end(), reason, source)
    return None


def _is_asserted(text: Text, reason: str, match) -> bool:
    """True when the text really gives this reason (a phrase's own "don't" is part of it, not a negation of it)."""
    start, end = match.start(), match.end()
    return not (is_hypothetical(text, start) or is_negated(text, start) or is_dismissed(text, start, end))


def read_cause(text: Text, source: str = "note") -> tuple[str | None, Evidence | None]:
    """The cause the rep states in so many words ("that's on me", "non dipende da noi"), if any."""
    for cause, pattern in (("internal", text.phrases.cause_internal), ("external", text.phrases.cause_external)):
        match = pattern.search(text.clean)
        if match and not is_hypothetical(text, match.start()):
            phrase = text.original[match.start():match.end()]
            return cause, Evidence("cause", phrase, match.start(), match.end(), cause, source)
    return None, None


def default_cause(reasons: list[str]) -> str:
    """The cause the reasons imply: internal wins over external, which wins over unknown."""
    if INTERNAL_REASONS.intersection(reasons):
        return "internal"
    if EXTERNAL_REASONS.intersection(reasons):
        return "external"
    return "unknown"
