"""A rep's answer to one of Keepwarm's emails, in plain words: confirm, stop, move the recontact, correct the
outcome or the cause, add decision makers or a private lesson, or unreadable.

Pure: the rep's own words (quotes already stripped) and the day they wrote go in, an `Answer` comes out. Short
commands (yes, stop, a date) are rules of their own; what the answer says about the meeting is read by the note
reader's own rules, with the same evidence: the outcome phrases (`outcome.py`), the stated cause and the reasons
(`reasons.py`), the decision makers (`people.py`), the dates (`dates.py`). Not the trained model: it was fitted on
whole notes, and a wrong "yes" would send email the rep held back, so anything the rules are not sure of is
`unreadable` (the rep gets a reply that says what to write).

Order: stop wins over everything; a correction, a date and an addition are all kept; a yes counts only without a
negation. A labelled lesson ("lesson: …", "lezione: …") is the rep's private words: nothing else is read in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from service.notes.dates import find_recontact, resolve_phrase
from service.notes.language import detect_language
from service.notes.outcome import score_outcome
from service.notes.people import find_decision_makers
from service.notes.phrases import all_phrases, phrases_for
from service.notes.reasons import read_cause, read_reasons
from service.notes.structured import command_recontact
from service.notes.text import Text, make_text, normalise, signature_start

# The primary intent, first that applies: what the reply to the rep leads with.
INTENTS = ("stop", "correct", "move", "add", "confirm", "unreadable")

# Only the first lines count: what follows is a signature or the client's leftovers.
_ANSWER_CHARS = 600
_SHORT_ANSWER_WORDS = 6
_YES_WITHIN_WORDS = 3  # a yes starts within the answer's first three words
_LANGUAGE_WORDS = 4  # fewer words than this (neutral ones left out) say nothing about the language
# A correction of the outcome must be said in a strong phrase ("we won", "abbiamo perso", "they signed"): weaker
# ones ("go ahead", "not now") are what reps write to confirm or to hesitate.
_SURE_OUTCOME = 3.0
MAX_LESSON = 2000

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
# Words only one of the two languages uses in an answer; "ok", "stop", "+3m", dates and names are in both.
_ONLY = {
    "en": re.compile(r"\b(?:yes|yep|yeah|go ahead|send\w*|confirm\w*|sure|looks good|fine|right|don'?t|do not"
                     r"|cancel\w*|recontact\w*|call|actually|we|won|lost|signed|closed|yesterday|fault|side|lesson|next time|also|please"
                     r"|thanks?|thank you|instead|months?|weeks?|them|they|it was|everything|january|february"
                     r"|march|april|may|june|july|august|september|october|november|december)\b"),
    "it": re.compile(r"\b(?:s[iì]|va bene|conferm\w*|mand\w*|invia\w*|procedi|vai|perfetto|giusto|d'accordo"
                     r"|annull\w*|scriv\w*|gli|ricontatt\w*|sposta\w*|rimanda\w*|in realtà|abbiamo|vinto|pers[oa]"
                     r"|hanno|firmat\w*|chius\w*|ieri|colpa|mia|nostra|loro|lezione|prossima volta|anche|grazie|invece|mesi|settimane|tutto"
                     r"|gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre"
                     r"|dicembre|è stata|basta|fermati)\b"),
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.U)
_NEUTRAL = frozenset({"ok", "okay", "stop", "no", "the", "a", "e", "ciao", "hi"})
# A labelled lesson: from its label to the end of its paragraph.
_LESSON = re.compile(
    r"^[ \t]*(?:lessons?(?:[ \t]+learn(?:ed|t))?|next[ \t]+time|note[ \t]+to[ \t]+self|takeaway|lezione(?:[ \t]+imparata)?"
    r"|lezioni|(?:per[ \t]+)?la[ \t]+prossima[ \t]+volta|nota[ \t]+per[ \t]+me)[ \t]*[:\-–—][ \t]*"
    r"(?P<lesson>\S.*(?:\n[ \t]*\S.*)*)", re.I | re.M)
# The cause in the words reps use when they correct it; `reasons.read_cause` reads the note's own phrases first.
_CAUSE = {
    "internal": re.compile(r"\b(?:(?:my|our)\s+(?:fault|mistake|bad)|on\s+(?:me|us)\b|(?:was|is)\s+(?:on\s+)?our"
                           r"\s+side|colpa\s+(?:mia|nostra)|(?:è|e')\s+(?:stata\s+)?colpa\s+(?:mia|nostra)"
                           r"|dal\s+nostro\s+lato|da\s+parte\s+nostra|errore\s+(?:mio|nostro))\b", re.I),
    "external": re.compile(r"\b(?:their\s+(?:fault|side|end|problem|budget|timing)|on\s+their\s+(?:side|end)"
                           r"|not\s+(?:my|our)\s+fault|colpa\s+(?:loro|sua)|dal\s+loro\s+lato|da\s+parte\s+loro"
                           r"|non\s+(?:è\s+)?(?:stata\s+)?colpa\s+(?:mia|nostra))\b", re.I),
}


@dataclass(frozen=True)
class Answer:
    """What the rep's answer asks for: its primary intent (INTENTS), and every change it names: the new recontact
    day, the corrected outcome or cause (with the reasons read), decision makers to add, a private lesson, whether
    it also says yes. `language` is None when the answer is too short to tell (the caller falls back)."""

    intent: str
    language: str | None = "en"
    recontact_on: date | None = None
    phrase: str | None = None
    outcome: str | None = None
    cause: str | None = None
    reasons: tuple[str, ...] = ()
    decision_makers: tuple[dict, ...] = ()
    lesson: str | None = None
    confirm: bool = False
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"intent": self.intent, "language": self.language, "phrase": self.phrase,
                "recontact_on": self.recontact_on.isoformat() if self.recontact_on else None,
                "outcome": self.outcome, "cause": self.cause, "reasons": list(self.reasons),
                "decision_makers": [dict(p) for p in self.decision_makers], "lesson": self.lesson,
                "confirm": self.confirm, "evidence": list(self.evidence)}


def read_answer(words: str, today: date, *, language: str | None = None) -> Answer:
    """The rep's answer read; `language` is the fallback when the words are too few to tell (the answered
    email's, or the rep's own)."""
    head = _without_signature(words[:_ANSWER_CHARS + MAX_LESSON])
    lesson, rest = _lesson(head)
    rest = rest[:_ANSWER_CHARS]
    text = " ".join(normalise(rest).lower().split())
    tongue = _language(text, lesson) or language
    reading = tongue or "en"
    if stopped := _stop(text):
        return Answer("stop", tongue, phrase=stopped)
    said = _said(rest, reading)
    moved = _move(rest, text, today, reading)
    confirm = _opening(_CONFIRM, text)
    confirmed = bool(confirm) and not _NEGATION.search(text)
    changes = {"correct": said["outcome"] or said["cause"], "move": moved,
               "add": said["decision_makers"] or lesson, "confirm": confirmed}
    intent = next((name for name, present in changes.items() if present), "unreadable")
    phrase = moved[1] if intent == "move" else confirm if intent == "confirm" else None
    return Answer(intent, tongue, recontact_on=moved[0] if moved else None, phrase=phrase,
                  outcome=said["outcome"], cause=said["cause"], reasons=said["reasons"],
                  decision_makers=said["decision_makers"], lesson=lesson, confirm=confirmed,
                  evidence=said["evidence"])


# Keepwarm's own words, when the rep's client quoted our email without marking it (no "> ", no header block):
# nothing from there on is the rep's (our footer lists "stop", "actually we won"…).
_OUR_WORDS = re.compile(r"^.*(?:Or just reply to this email|Oppure rispondi a questa email"
                        r"|Here is what I understood from your note|[Ee]cco cosa ho capito dalla tua nota)"
                        r"|^[ \t]*(?:WHAT I UNDERSTOOD|COSA HO CAPITO|PLANNED EMAILS|EMAIL PREVISTE)[ \t]*$", re.M)


def _without_signature(words: str) -> str:
    """The rep's words without their signature, nor our email when it was quoted without marks."""
    ours = _OUR_WORDS.search(words)
    clean = normalise(words[:ours.start()] if ours else words)
    start = signature_start(clean, all_phrases())
    return clean[:start].rstrip() if start is not None else clean


def _lesson(words: str) -> tuple[str | None, str]:
    """The labelled lesson, and the words without it (nothing else is read in the rep's private lesson)."""
    match = _LESSON.search(words)
    if match is None:
        return None, words
    lesson = " ".join(match.group("lesson").split())[:MAX_LESSON]
    return lesson or None, words[:match.start()] + words[match.end():]


def _language(text: str, lesson: str | None) -> str | None:
    """The answer's language when its words tell: a word only one language uses in answers, else enough frequent
    words; None for "ok", "stop", "+3m" and the like."""
    sample = f"{text} {(lesson or '').lower()}"
    hits = {tongue: len(pattern.findall(sample)) for tongue, pattern in _ONLY.items()}
    if hits["en"] != hits["it"]:
        return max(hits, key=hits.get)
    if len([w for w in _WORD.findall(sample) if w not in _NEUTRAL]) >= _LANGUAGE_WORDS:
        found = detect_language(sample, default="")
        return found or None
    return None


def _first(table: dict[str, str], text: str) -> str | None:
    """The first phrase of the table, in any language, found in the text."""
    found = [m for pattern in table.values() if (m := re.search(pattern, text))]
    return min(found, key=lambda m: m.start()).group() if found else None


def _opening(table: dict[str, str], text: str) -> str | None:
    """A yes opens the answer ("yes, …", "ok …", "va bene"): one further in is about something else ("their CFO
    must approve"), and a wrong yes sends email the rep held back."""
    found = [m for pattern in table.values() if (m := re.search(pattern, text))]
    first = min(found, key=lambda m: m.start()) if found else None
    if first is None or len(text[:first.start()].split()) >= _YES_WITHIN_WORDS:
        return None
    return first.group()


def _stop(text: str) -> str | None:
    phrase = _first(_STOP, text)
    return None if phrase is None or _NOT_YET.search(text) else phrase


def _texts(words: str, language: str) -> list[Text]:
    """The words as the note readers take them, in the answer's language first."""
    return [make_text(words, phrases_for(tongue)) for tongue in dict.fromkeys((language, "en", "it"))]


def _said(words: str, language: str) -> dict:
    """What the answer says about the meeting, read as the note reader reads a note: the outcome phrases weighed,
    the stated cause (or the corrections reps write: "it was my fault", "colpa loro"), the reasons, the people."""
    found = {"outcome": None, "cause": None, "reasons": (), "decision_makers": (), "evidence": ()}
    if not words.strip():
        return found
    evidence = []
    for text in _texts(_blanked(words, _CONFIRM), language):
        score = score_outcome(text, "answer")
        outcome = score.decide()
        if outcome in ("won", "lost") and found["outcome"] is None and max(score.won, score.lost) >= _SURE_OUTCOME:
            found["outcome"] = outcome
            evidence += [e.phrase for e in score.evidence if e.value == outcome][:1]
        if found["cause"] is None:
            found["cause"], phrase = _cause(text)
            evidence += [phrase] if phrase else []
        if not found["reasons"]:
            found["reasons"] = tuple(read_reasons(text, "answer")[0])
        if not found["decision_makers"]:
            people, proof = find_decision_makers(text, "answer")
            found["decision_makers"] = tuple({"name": p.name, "role": p.role} for p in people)
            evidence += [e.phrase for e in proof][:len(people)]
    if found["outcome"] == "won":
        found["cause"], found["reasons"] = None, ()  # a sale made has no cause of loss
    found["evidence"] = tuple(dict.fromkeys(evidence))
    return found


def _blanked(words: str, table: dict[str, str]) -> str:
    """The words with the table's phrases blanked ("go ahead" confirms; it says nothing of the outcome)."""
    pattern = re.compile("|".join(f"(?:{p})" for p in table.values()), re.I)
    return pattern.sub(lambda m: " " * len(m.group()), words)


def _cause(text: Text) -> tuple[str | None, str | None]:
    """internal or external, as the note reader reads a stated cause, else as reps correct one ("not my fault"
    is external, though it holds "my fault")."""
    cause, evidence = read_cause(text, "answer")
    denied = _CAUSE["external"].search(text.clean)
    if cause and not (cause == "internal" and denied and denied.start() <= evidence.start < denied.end()):
        return cause, evidence.phrase
    hits = [(m.start(), name, m.group()) for name, pattern in _CAUSE.items() if (m := pattern.search(text.clean))]
    if not hits:
        return None, None
    external = [h for h in hits if h[1] == "external"]  # "not my fault" holds "my fault": the longer says it
    _, name, phrase = external[0] if external else min(hits)
    return name, phrase


def _move(original: str, text: str, today: date, language: str) -> tuple[date, str | None] | None:
    """A plus-address style command ("+3m", "2027-06-01"), else a date phrase the date reader is sure of."""
    if command := _COMMAND.search(text):
        day = command_recontact(command.group(1).replace(" ", ""), today)
        if day and day > today:
            return day, command.group().strip()
    for tongue in dict.fromkeys((language, "it" if language == "en" else "en")):
        found = find_recontact(make_text(original, phrases_for(tongue)), today)
        if found.day and found.day > today:
            return found.day, found.evidence.phrase if found.evidence else None
        if len(text.split()) <= _SHORT_ANSWER_WORDS:
            day = resolve_phrase(original, phrases_for(tongue), today)
            if day and day > today:
                return day, original.strip()
    return None
