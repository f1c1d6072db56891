"""A rep's answer to one of Keepwarm's emails, in plain words: confirm, stop, move the recontact, or unreadable.

Pure: the rep's own words (quotes already stripped) and the day they wrote go in, an `Answer` comes out. Rules,
not the trained reader: answers are short commands, and a wrong "yes" would send email the rep held back, so
anything the rules are not sure of is `unreadable` (the rep gets a reply that says what to write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from service.notes.dates import find_recontact, resolve_phrase
from service.notes.language import detect_language
from service.notes.phrases import phrases_for
from service.notes.structured import command_recontact
from service.notes.text import make_text, normalise

INTENTS = ("confirm", "stop", "move", "unreadable")

# Only the first lines count: what follows is a signature or the client's leftovers.
_ANSWER_CHARS = 400
_SHORT_ANSWER_WORDS = 6

_STOP = {
    "en": r"\bstop\b|\bcancel\b|\bdon'?t (?:e-?mail|write|contact|send|mail)\b|\bdo not (?:e-?mail|write|contact|send"
          r"|mail)\b|\bno (?:more )?e-?mails?\b|\bleave (?:them|him|her) alone\b|\bnothing to (?:them|him|her)\b",
    "it": r"\bstop\b|\bbasta\b|\bannull\w*|\bnon (?:gli |le |li )?(?:scriv|mand|invi|contatt)\w*|\bferma\w*"
          r"|\bnessuna e-?mail\b|\blascia(?:lo|la|li)? stare\b",
}
_CONFIRM = {
    "en": r"\byes\b|\byep\b|\byeah\b|\bok(?:ay)?\b|\bgo ahead\b|\bsend(?: (?:them|it|away))?\b|\bconfirm(?:ed)?\b"
          r"|\bcorrect\b|\bsure\b|\blooks good\b|\blgtm\b|\bapproved?\b|\bfine\b|\bright\b",
    "it": r"\bs[iì]\b|\bva bene\b|\bconferm\w*|\bmanda(?:le|li|la|lo)?\b|\binvia(?:le|li|la|lo)?\b|\bprocedi\b"
          r"|\bvai\b|\bperfetto\b|\bgiusto\b|\bd'accordo\b|\bcorretto\b",
}
# A negation anywhere in the answer: "ok, don't send" must never read as a yes.
_NEGATION = re.compile(r"\b(?:don'?t|do not|not|never|no|non|mai|nope|wait|aspetta)\b")
# "don't send yet": the rep wants to wait, not to cancel.
_NOT_YET = re.compile(r"\b(?:yet|for now|until|ancora|per ora|finch[eé])\b")
_COMMAND = re.compile(r"(?<![\w+])\+?\s?(\d{1,3}\s?[dwmy]|\d{4}-\d{2}-\d{2})\b", re.I)
_ITALIAN_ONLY = re.compile(r"\b(?:ricontatt\w*|sposta\w*|rimanda\w*|" + _STOP["it"] + "|" + _CONFIRM["it"] + r")",
                           re.I)


@dataclass(frozen=True)
class Answer:
    """What the rep's answer asks for: an intent of INTENTS, the new recontact day for `move`, the words that
    said so, and the language to answer in."""

    intent: str
    language: str = "en"
    recontact_on: date | None = None
    phrase: str | None = None

    def to_json(self) -> dict:
        return {"intent": self.intent, "language": self.language, "phrase": self.phrase,
                "recontact_on": self.recontact_on.isoformat() if self.recontact_on else None}


def read_answer(words: str, today: date, *, language: str | None = None) -> Answer:
    """The rep's answer read: stop wins over a date, a date over a yes, and a yes only without a negation."""
    text = " ".join(normalise(words[:_ANSWER_CHARS]).lower().split())
    language = _language(text, language)
    if stopped := _stop(text, language):
        return stopped
    if moved := _move(words[:_ANSWER_CHARS], text, today, language):
        return moved
    confirm = _first(_CONFIRM, text)
    if confirm and not _NEGATION.search(text):
        return Answer("confirm", language, phrase=confirm)
    return Answer("unreadable", language)


def _language(text: str, given: str | None) -> str:
    if _ITALIAN_ONLY.search(text) and not re.search(_STOP["en"] + "|" + _CONFIRM["en"], text):
        return "it"
    return detect_language(text, default=given or "en")


def _first(table: dict[str, str], text: str) -> str | None:
    """The first phrase of the table, in any language, found in the text."""
    found = [m for pattern in table.values() if (m := re.search(pattern, text))]
    return min(found, key=lambda m: m.start()).group() if found else None


def _stop(text: str, language: str) -> Answer | None:
    phrase = _first(_STOP, text)
    if phrase is None or _NOT_YET.search(text):
        return None
    return Answer("stop", language, phrase=phrase)


def _move(original: str, text: str, today: date, language: str) -> Answer | None:
    """A plus-address style command ("+3m", "2027-06-01"), else a date phrase the date reader is sure of."""
    if command := _COMMAND.search(text):
        day = command_recontact(command.group(1).replace(" ", ""), today)
        if day and day > today:
            return Answer("move", language, day, command.group().strip())
    for tongue in dict.fromkeys((language, "it" if language == "en" else "en")):
        found = find_recontact(make_text(original, phrases_for(tongue)), today)
        if found.day and found.day > today:
            return Answer("move", language, found.day, found.evidence.phrase if found.evidence else None)
        if len(text.split()) <= _SHORT_ANSWER_WORDS:
            day = resolve_phrase(original, phrases_for(tongue), today)
            if day and day > today:
                return Answer("move", language, day, original.strip())
    return None
