"""Why the sale was lost (the fixed vocabulary) and whose doing it was (cause)."""

from __future__ import annotations

from service.notes.model import EXTERNAL_REASONS, INTERNAL_REASONS, REASONS, Evidence
from service.notes.text import Text, is_denied, is_dismissed, is_hypothetical, is_negated

_WEAK = "_weak"

# Reasons that describe how the customer decides rather than why they did not buy: on their own they are no
# sign of a lost sale ("the CFO must approve it" is as true of a deal still open as of one lost).
_PROCESS_REASONS = frozenset({"consult"})
# Weak phrases that still show a loss: a bare deferral ("postponed", "next year") is one; a price or a vendor
# merely mentioned ("I'll send the pricing sheet") is not.
_DEFERRALS = frozenset({"timing"})
# The catch-all: it stands only when no reason of the vocabulary proper explains the loss.
_CATCH_ALL = "other"


def find_reasons(text: Text, source: str = "note") -> tuple[list[str], list[Evidence]]:
    """The reasons the text gives, in vocabulary order, with the phrase behind each."""
    reasons, evidence, _ = read_reasons(text, source)
    return reasons, evidence


def read_reasons(text: Text, source: str = "note") -> tuple[list[str], list[Evidence], bool]:
    """The reasons, their evidence, and whether they are themselves a sign of a lost sale.

    A reason the text explicitly waves away anywhere ("not a budget problem: it's the price") is dropped even
    where another sentence seems to give it: the contrast is the rep's considered word on it.
    """
    found: dict[str, Evidence] = {}
    denied: set[str] = set()
    for reason, patterns in text.phrases.reasons.items():
        evidence, was_denied = _first_asserted(text, reason, patterns, source)
        if evidence:
            found[reason] = evidence
        if was_denied:
            denied.add(reason.removesuffix(_WEAK))
    for reason, evidence in _lost_on(text, source):
        found.setdefault(reason, evidence)
    for no, yes, evidence in _contrasts(text, source):
        denied.add(no)
        found[yes] = evidence
    for reason in denied:
        found.pop(reason, None)
        found.pop(reason + _WEAK, None)
    strong = _use_fallbacks(found)
    reasons = [reason for reason in REASONS if reason in found]
    kinds = reasons if strong else [reason for reason in reasons if reason in _DEFERRALS]
    signals_loss = any(reason not in _PROCESS_REASONS for reason in kinds)
    return reasons, [found[reason] for reason in reasons], signals_loss


def _lost_on(text: Text, source: str):
    """"lost on price", "perso per il budget", "it's purely timing", "è solo una questione di tempi": the word
    after names the reason in the vocabulary's own words."""
    for pattern in (text.phrases.lost_on, text.phrases.named):
        for match in pattern.finditer(text.clean):
            reason = _reason_word(text, match.group("word"))
            if reason and not is_negated(text, match.start()) and not is_hypothetical(text, match.start()):
                start, end = match.span("word")
                yield reason, Evidence("reasons", text.original[match.start():end], match.start(), end, reason, source)


def _reason_word(text: Text, word: str) -> str | None:
    """The reason a word of the vocabulary's own ("price", "tempi") names, if any."""
    for reason, words in text.phrases.reason_words.items():
        if words.match(word):
            return reason
    return None


def _contrasts(text: Text, source: str):
    """"not price but timing", "non è una questione di prezzo ma di tempi": the first reason is waved away, the
    second given, wherever either word stands in the tables."""
    for match in text.phrases.contrast.finditer(text.clean):
        no, yes = _reason_word(text, match.group("no")), _reason_word(text, match.group("yes"))
        if no and yes and no != yes and not is_hypothetical(text, match.start()):
            start, end = match.span("yes")
            yield no, yes, Evidence("reasons", text.original[match.start():end], match.start(), end, yes, source)


def _use_fallbacks(found: dict[str, Evidence]) -> bool:
    """`<reason>_weak` phrases (bare deferrals such as "next year", a price merely mentioned) count only when
    nothing else explains the loss, and so does the catch-all `other`; False when only such phrases were found
    (they explain a loss known otherwise, but do not show one)."""
    weak = {key: evidence for key, evidence in found.items() if key.endswith(_WEAK)}
    for key in weak:
        del found[key]
    if _CATCH_ALL in found and len(found) > 1:
        del found[_CATCH_ALL]
    if found:
        return True
    for key, evidence in weak.items():
        reason = key.removesuffix(_WEAK)
        found[reason] = Evidence(evidence.field, evidence.phrase, evidence.start, evidence.end, reason, evidence.source)
    return False


def _first_asserted(text: Text, reason: str, patterns, source: str) -> tuple[Evidence | None, bool]:
    """The first phrase for `reason` that is neither negated, hedged nor waved away; and whether one was waved away."""
    denied, found = False, None
    for pattern in text.possible(patterns):
        for match in pattern.finditer(text.clean):
            start, end = match.start(), match.end()
            if is_dismissed(text, start, end):
                denied = denied or is_denied(text, start, end)  # every phrase is read: a denial anywhere counts
            elif found is None and not (is_hypothetical(text, start) or is_negated(text, start)):
                found = Evidence("reasons", text.original[start:end], start, end, reason, source)
    return found, denied


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
