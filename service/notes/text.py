"""Text helpers shared by the readers: normalising, sentences, clause scope, negation and hedges."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import regex

from service.notes.phrases import Phrases

# One character for one character, so that spans found in the normalised text point into the original.
_SAME_LENGTH = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
                              "\u2013": "-", "\u2014": "-", "\u02bc": "'", "`": "'", "\r": "\n"})
_TO_NORMALISE = re.compile(f"[{''.join(map(chr, _SAME_LENGTH))}]")  # most notes have none of them
_SENTENCE_END = re.compile(r"[.!?;]+(?=\s|$)|\n[ \t]*\n|\n[ \t]*(?=[-*•])|:[ \t]*\n")
_ABBREVIATION = re.compile(r"\b(?:dott|ing|sig|avv|geom|rag|arch|prof|mr|mrs|ms|dr|st|n|nr|no|tel|ca|vs|etc|e\.g|i\.e)\.$", re.I)
_WORDS_BEFORE = 6


@dataclass
class Text:
    """A normalised text with its sentence boundaries, read once and shared by every reader."""

    original: str
    clean: str
    phrases: Phrases
    starts: list[int] = field(default_factory=list)
    clauses: dict[int, str] = field(default_factory=dict, repr=False, compare=False)  # clause_before, by offset

    # A literal prefilter used to rule patterns out before they ran (16% of the reading time on the dev split). It
    # needed the standard library's private regex parser, or a parser of our own: it was removed, and every pattern
    # scans the text. These two stay as the readers' single place to add one back.
    def possible(self, patterns) -> list:
        """The patterns worth running on this text: all of them."""
        return list(patterns)

    def possible_items(self, items, at: int) -> list:
        """The tuples whose pattern (at index `at`) is worth running on this text: all of them."""
        return list(items)

    def sentence_span(self, pos: int) -> tuple[int, int]:
        """The (start, end) of the sentence holding `pos`."""
        index = bisect_right(self.starts, pos) - 1
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.clean)
        return self.starts[index], end

    def sentence(self, pos: int) -> str:
        """The sentence holding `pos`."""
        start, end = self.sentence_span(pos)
        return self.clean[start:end]


def normalise(text: str) -> str:
    """Straight quotes and plain spaces, keeping every character at its place (a text with nothing to change is
    returned as it is: translating costs more than looking)."""
    return text.translate(_SAME_LENGTH) if _TO_NORMALISE.search(text) else text


def make_text(original: str, phrases: Phrases) -> Text:
    """Prepare `original` for reading in the language of `phrases`."""
    clean = normalise(original)
    return Text(original=original, clean=clean, phrases=phrases, starts=find_sentence_starts(clean))


def find_sentence_starts(clean: str) -> list[int]:
    """Offsets where sentences start; a full stop after "dott." or "Mr." does not end one."""
    starts = [0]
    for match in _SENTENCE_END.finditer(clean):
        if match.group().startswith(".") and _ABBREVIATION.search(clean[max(0, match.start() - 6):match.start() + 1]):
            continue
        starts.append(match.end())
    return starts


def clause_before(text: Text, pos: int) -> str:
    """The words of the clause that lead up to `pos` ("but" and sentence ends cut it).

    Kept per offset: negation, hedge, dismissal and process checks all ask for the clause before the same phrase.
    """
    clause = text.clauses.get(pos)
    if clause is None:
        start, _ = text.sentence_span(pos)
        head = text.clean[start:pos]
        ends = [match.end() for match in text.phrases.clause_breaks.finditer(head)]
        clause = text.clauses[pos] = head[ends[-1]:] if ends else head
    return clause


def _last_words(head: str, count: int = _WORDS_BEFORE) -> str:
    """The last `count` words of `head`."""
    words = head.split()
    return " ".join(words[-count:]) + (" " if head.endswith((" ", "\n")) else "")


def is_negated(text: Text, pos: int, phrase: str = "") -> bool:
    """True when a negation ("not", "didn't", "non") stands just before `pos` in the same clause.

    A phrase that is itself negative ("non potete impegnare spese") is read whole: a "non" before it belongs
    to another verb far more often than it makes a double negative.
    """
    if phrase and text.phrases.negator.search(" ".join(phrase.split()[:2])):
        return False
    window = _last_words(clause_before(text, pos))
    window = text.phrases.not_a_negation.sub(" ", window)
    return bool(text.phrases.negator.search(window))


def is_concord(text: Text, phrase: str) -> bool:
    """True when a phrase is itself negative in a way a negation before it agrees with rather than flips
    ("non c'era niente da fare": Italian negative concord)."""
    concord = text.phrases.concord
    return bool(concord and concord.match(phrase))


def is_process(text: Text, start: int, end: int) -> bool:
    """True when a present or modal passive with its agent makes a phrase a description of how the customer buys
    rather than an event: "capex is signed off by the CFO", "deve essere firmato dal titolare" (but "the contract
    is signed" and "è stato firmato dal titolare" are events)."""
    phrases = text.phrases
    return bool(phrases.process_after.match(text.clean, end)
                and phrases.process.search(_last_words(clause_before(text, start), 4)))


def is_hypothetical(text: Text, pos: int) -> bool:
    """True when the clause before `pos` is a condition or a hedge ("if they sign", "se firmano")."""
    return bool(text.phrases.hypothesis.search(_last_words(clause_before(text, pos), 8)))


def is_dismissed(text: Text, start: int, end: int) -> bool:
    """True when the phrase is waved away: "price was not an issue", "not because of the budget"."""
    after = text.clean[end:text.sentence_span(start)[1]]
    before = clause_before(text, start)
    phrases = text.phrases
    return bool(phrases.dismissed_after.search(after) or phrases.dismissed_before.search(before))


def is_denied(text: Text, start: int, end: int) -> bool:
    """True when the phrase is explicitly denied ("not a budget problem", "price was not the issue"): a dismissal
    with a negation in it, unlike "the budget is approved", which may be a condition still to come."""
    phrases = text.phrases
    if phrases.dismissed_before.search(clause_before(text, start)):
        return True
    after = phrases.dismissed_after.search(text.clean[end:text.sentence_span(start)[1]])
    return bool(after and phrases.negator.search(after.group()))


def blank(clean: str, spans: list[tuple[int, int]]) -> str:
    """`clean` with the spans turned to spaces (newlines kept), so that offsets stay true."""
    chars = list(clean)
    for start, end in spans:
        for index in range(start, min(end, len(chars))):
            if chars[index] != "\n":
                chars[index] = " "
    return "".join(chars)


def signature_start(clean: str, phrases_list) -> int | None:
    """Where the closing line ("Best regards,", "Cordiali saluti") starts, if the rest looks like a signature."""
    closing = _closing_line(tuple(phrases.signature for phrases in phrases_list))
    offset = 0
    lines = clean.split("\n")
    for index, line in enumerate(lines):  # line by line: an anchored match per line, not a search at every offset
        # A closing word on the first line is a greeting ("ciao," opens as often as it closes an Italian note).
        if line.strip() and clean[:offset].strip() \
                and (closing(line) or _is_sign_off_name(line, lines[index + 1:])) \
                and _looks_like_signature(clean[offset + len(line):]):
            return offset
        offset += len(line) + 1
    return None


@cache
def _closing_line(signatures: tuple) -> Callable[[str], bool]:
    """Whether a line is a closing line in any language: one pattern for all of them (a line is tried once, not
    once per language), or each in turn when they cannot be joined."""
    flags = {signature.flags for signature in signatures}
    if len(flags) == 1:
        try:
            joined = regex.compile("|".join(f"(?:{signature.pattern})" for signature in signatures), flags.pop())
            return lambda line: joined.match(line) is not None
        except regex.error:
            pass
    return lambda line: any(signature.match(line) for signature in signatures)


_NAME_LINE = re.compile(r"^[ \t]*([A-ZÀ-Ý][a-zà-ÿ'-]+)(?:[ \t]+[A-ZÀ-Ý][a-zà-ÿ'-]+){0,2}[ \t]*$")


def _is_sign_off_name(line: str, rest: list[str]) -> bool:
    """A bare first name signing off, followed by the signature block under the full name ("Sarah" / "Sarah Chen")."""
    match = _NAME_LINE.match(line)
    following = next((item.strip() for item in rest if item.strip()), "")
    return bool(match) and following.split(" ")[0] == match.group(1) and following != line.strip()


def _looks_like_signature(rest: str) -> bool:
    """Short lines only (a name, a title, an address): no sentence of prose follows."""
    lines = [line for line in rest.splitlines() if line.strip()]
    return len(lines) <= 8 and all(len(line) < 90 for line in lines)


# ---- what a learned judge weighs of a phrase's surroundings (service/notes/dates.py, people.py) ------------------

FEATURE_WORD = re.compile(r"[\wÀ-ÿ']+")
_FEATURE_WINDOW = 40  # characters each side of a phrase whose words a judge weighs


def add_words_around(row: dict[str, float], clean: str, start: int, end: int) -> tuple[list[str], list[str]]:
    """The four words before and after a span, by position ("L0:the") and as a bag ("L:the"); returned too, each
    side nearest first."""
    before = FEATURE_WORD.findall(clean[max(0, start - _FEATURE_WINDOW):start].lower())[-4:][::-1]
    after = FEATURE_WORD.findall(clean[end:end + _FEATURE_WINDOW].lower())[:4]
    for n, word in enumerate(before):
        row[f"L{n}:{word}"] = row[f"L:{word}"] = 1.0
    for n, word in enumerate(after):
        row[f"R{n}:{word}"] = row[f"R:{word}"] = 1.0
    return before, after
