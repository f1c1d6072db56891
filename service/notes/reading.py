"""The reading of a note (the contract) and `understand`, which puts the readers together.

Order of authority: plus-address commands, then labelled lines, then the rep's prose, then the forwarded
customer's words (used where the rep's note says nothing about a field).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from service.notes.dates import Candidates, Chooser, Found, choose_recontact, date_candidates, region_of
from service.notes.language import detect_language
from service.notes.learned import (
    Judges,
    NoteModel,
    NoteText,
    Prediction,
    cue_tokens,
    judges,
    load_model,
    locate,
    predict,
)
from service.notes.model import (
    CAUSES,
    OUTCOMES,
    REASONS,
    Commands,
    DecisionMaker,
    Evidence,
    NoteReading,
)
from service.notes.outcome import OutcomeScore, score_outcome
from service.notes.people import Candidate, Judge, candidates, find_decision_makers, named_from
from service.notes.phrases import all_phrases, phrases_for
from service.notes.reasons import default_cause, read_cause, read_reasons
from service.notes.structured import Structured, command_outcome, command_recontact, read_structured
from service.notes.text import Text, blank, find_sentence_starts, normalise, signature_start

__all__ = ["CAUSES", "OUTCOMES", "REASONS", "Commands", "DecisionMaker", "Evidence", "NoteReading", "understand"]

_REASON_WEIGHT = 1.5  # a reason for not buying is itself a sign of a lost sale
_SCHEDULED_DAYS = 21  # a follow-up this close is a next step of an open deal, whatever verb books it
_FORWARD_SENDER = re.compile(r"^[ \t>]*(?:from|da)[ \t]*:[ \t]*\"?([^<\"\n@]+?)\"?[ \t]*(?:<|\[|$)", re.I | re.M)
_FORWARD_HEADER = re.compile(
    r"^[ \t>]*(?:from|da|sent|inviato|date|data|to|a|cc|subject|oggetto|reply-to)[ \t]*:.*$"
    r"|^[ \t>]*-{2,}[^\n]*(?:forwarded|original|inoltrato|originale)[^\n]*-*[ \t]*$"
    r"|^[ \t>]*(?:inizio messaggio inoltrato|begin forwarded message)[^\n]*$|^[ \t]*_{10,}[ \t]*$",
    re.I | re.M,
)


class _Part:
    """What one text (the rep's note or the forwarded answer) says on its own.

    Each reader runs when its field is first asked for: the rep's note is asked for everything, the forwarded
    answer only for what the note leaves open (often just its decision makers).
    """

    def __init__(self, text: Text, today: date, day_first: bool, source: str, sender: str | None = None,
                 region: str = "") -> None:
        self.text = text
        self.region = region  # the rep's country where its feasts differ ("CA": Thanksgiving in October)
        self.today = today
        self.day_first = day_first
        self.source = source
        self.sender = sender  # the forwarded message's author: not a decision maker to meet

    @cached_property
    def _reasons(self) -> tuple[list[str], list[Evidence], bool]:
        return read_reasons(self.text, self.source)

    @cached_property
    def _cause(self) -> tuple[str | None, Evidence | None]:
        return read_cause(self.text, self.source)

    @cached_property
    def date_candidates(self) -> Candidates:
        return date_candidates(self.text, self.today, self.day_first, self.source, self.region)

    @cached_property
    def _recontact(self) -> Found:
        return choose_recontact(self.date_candidates)

    @cached_property
    def people_candidates(self) -> list[Candidate]:
        return candidates(self.text, self.source)

    @cached_property
    def _people(self) -> tuple[list[DecisionMaker], list[Evidence]]:
        return find_decision_makers(self.text, self.source, found=self.people_candidates)

    def judged_recontact(self, chooser: Chooser) -> Found:
        """The recontact phrase a learned chooser picks among the rules' time phrases."""
        return choose_recontact(self.date_candidates, chooser)

    def judged_people(self, judge: Judge) -> tuple[list[DecisionMaker], list[Evidence]]:
        """The people a learned judge keeps among those the rules find, without the forwarded message's author."""
        people, evidence = find_decision_makers(self.text, self.source, judge, self.people_candidates)
        return _without_sender(people, self.sender), evidence

    @cached_property
    def score(self) -> OutcomeScore:
        """The outcome phrases weighed; a follow-up booked soon is a next step."""
        score = score_outcome(self.text, self.source)
        if self.recontact and (self.recontact - self.today).days <= _SCHEDULED_DAYS:
            score.next_steps = True  # "ci risentiamo il 12 ottobre", two weeks out: a meeting booked, not a deferral
        return score

    @property
    def reasons(self) -> list[str]:
        return self._reasons[0]

    @property
    def reasons_signal_loss(self) -> bool:
        """False when the only reasons are a decision process or mere mentions."""
        return self._reasons[2]

    @property
    def cause(self) -> str | None:
        return self._cause[0]

    @property
    def recontact(self) -> date | None:
        return self._recontact[0]

    @property
    def no_recontact(self) -> bool:
        return self._recontact.none

    @property
    def recontact_asked(self) -> bool:
        return self._recontact.asked

    @cached_property
    def decision_makers(self) -> list[DecisionMaker]:
        """Decision makers other than the forwarded message's author (their signature names them with a role)."""
        return _without_sender(self._people[0], self.sender)

    def evidence(self, name: str) -> list[Evidence]:
        """The evidence behind one field's value."""
        if name == "outcome":
            return self.score.evidence
        if name == "reasons":
            return self._reasons[1]
        if name == "cause":
            return [self._cause[1]] if self._cause[1] else []
        if name == "recontact_on":
            return [self._recontact[1]] if self._recontact[1] else []
        return self._people[1]

    @property
    def outcome(self) -> str:
        """The outcome this text points to on its own."""
        return self.score.decide(self.reason_weight)

    @property
    def reason_weight(self) -> float:
        """What the reasons add to "lost": a decision process or a mere mention adds nothing to a recap of next steps."""
        if self.reasons_signal_loss or (self.reasons and not self.score.next_steps):
            return _REASON_WEIGHT
        return 0.0


def _prepare(original: str) -> Text:
    """Normalise, cut the signature off, detect the language."""
    clean = normalise(original)
    start = signature_start(clean, all_phrases())
    clean = clean[:start].rstrip()  # offsets before the signature stay true; the readers never scan the rest
    return Text(original, clean, phrases_for(detect_language(clean)), find_sentence_starts(clean))


def _without_lines(text: Text, spans: list[tuple[int, int]]) -> Text:
    """The text with its labelled lines blanked, so the prose readers do not read them twice."""
    return Text(text.original, blank(text.clean, spans), text.phrases, text.starts) if spans else text


def _needs_forwarded(note: _Part) -> bool:
    """The forwarded answer is read only where the rep's note leaves a field open."""
    outcome = note.outcome
    return outcome == "unknown" or (outcome == "lost" and not note.reasons) \
        or (outcome != "won" and note.recontact is None and not note.no_recontact) or not note.decision_makers


def _forwarded_text(forwarded: str) -> str:
    """The customer's words without the forward's header lines (offsets kept)."""
    return _FORWARD_HEADER.sub(lambda match: " " * len(match.group()), forwarded)


def _forwarded_sender(forwarded: str) -> str | None:
    """The name on the forward's From:/Da: line: the customer who wrote, not a third party to meet."""
    match = _FORWARD_SENDER.search(forwarded)
    return match.group(1).strip().lower() if match else None


def _without_sender(people: list[DecisionMaker], sender: str | None) -> list[DecisionMaker]:
    """Decision makers other than the forwarded message's author (their signature names them with a role)."""
    return [person for person in people if not (sender and person.name and person.name.lower() in sender)]


def _word_count(text: Text) -> int:
    """How many words the text has once blanked."""
    return len(text.clean.split())


def _merge(note: _Part, forwarded: _Part | None) -> NoteReading:
    """The rep's note wins where it speaks; the forwarded answer fills in the rest."""
    primary = note
    if forwarded and note.outcome == "unknown" and forwarded.outcome != "unknown":
        primary = forwarded
    reading = NoteReading(outcome=primary.outcome, language=_language_of(note, forwarded))
    reading.reasons = note.reasons or (forwarded.reasons if forwarded else [])
    reading.cause = note.cause
    reading.recontact_on = note.recontact
    reading.recontact_asked = note.recontact is not None and note.recontact_asked  # the rep's words, not the customer's
    if note.recontact is None and not note.no_recontact and forwarded:
        reading.recontact_on = forwarded.recontact
    reading.decision_makers = note.decision_makers or (forwarded.decision_makers if forwarded else [])
    reading.evidence = _merged_evidence(note, forwarded, reading)
    return reading


def _language_of(note: _Part, forwarded: _Part | None) -> str:
    """The note's language, or the forwarded text's when the note has hardly any words."""
    if forwarded and _word_count(note.text) < 4:
        return forwarded.text.phrases.language
    return note.text.phrases.language


def _merged_evidence(note: _Part, forwarded: _Part | None, reading: NoteReading) -> list[Evidence]:
    """The evidence behind the values kept, from whichever text gave them."""
    chosen = []
    for name in ("outcome", "reasons", "cause", "recontact_on", "decision_makers"):
        items = note.evidence(name) or (forwarded.evidence(name) if forwarded else [])
        chosen.extend(item for item in items if name != "outcome" or item.value == reading.outcome)
    return chosen


def _apply_structured(reading: NoteReading, found: Structured) -> None:
    """Labelled lines override the prose."""
    if found.outcome:
        reading.outcome = found.outcome
    if found.reasons is not None:
        reading.reasons = found.reasons
    if found.cause:
        reading.cause = found.cause
    if found.recontact or found.no_recontact:
        reading.recontact_on = found.recontact
        reading.recontact_asked = bool(found.recontact)
    if found.decision_makers is not None:
        reading.decision_makers = found.decision_makers
    overridden = {item.field for item in found.evidence}
    reading.evidence = [item for item in reading.evidence if item.field not in overridden] + found.evidence


def _apply_commands(reading: NoteReading, commands: Commands | None, today: date) -> None:
    """Plus-address commands override everything; noemail changes nothing in the reading."""
    outcome = command_outcome(commands)
    if outcome:
        reading.outcome = outcome
        reading.evidence = [item for item in reading.evidence if item.field != "outcome"]
        reading.evidence.append(Evidence("outcome", f"+{outcome}", 0, 0, outcome, "command"))
    day = command_recontact(commands.recontact, today) if commands and commands.recontact else None
    if day:
        reading.recontact_on, reading.recontact_asked = day, True
        reading.evidence = [item for item in reading.evidence if item.field != "recontact_on"]
        reading.evidence.append(Evidence("recontact_on", f"+{commands.recontact}", 0, 0, day.isoformat(), "command"))


def _finish(reading: NoteReading, stated_cause: str | None, recontact_given: bool) -> None:
    """Cause and reasons belong to a lost sale only; the cause the rep states beats the default."""
    if reading.outcome == "won" and not recontact_given:
        reading.recontact_on = None  # a sale made needs no recontact, whatever dates the note mentions
        reading.evidence = [item for item in reading.evidence if item.field != "recontact_on"]
    reading.recontact_asked = reading.recontact_asked and reading.recontact_on is not None
    if reading.outcome != "lost":
        reading.cause, reading.reasons = None, []
        reading.evidence = [item for item in reading.evidence if item.field not in {"cause", "reasons"}]
        return
    reading.cause = stated_cause or default_cause(reading.reasons)


_SURE = 0.99  # a plus-address command or a labelled line is the rep's explicit word
# Below this probability the cause head yields to the rep's stated cause or, without one, to the default cause of
# the reasons read. Grouped cross-validation on train (five folds by writer, 1,593 lost notes): the head alone
# 87.3% right, stated-or-default alone 87.6%, the head from 0.7 up and the rules below it 88.9%. With the weighed
# cause head (train b1-b69, 6,056 lost notes, 2026-12-07; corpus/train.py `_weighted_classes`): from 0.7 up 92.8%,
# 0.8 93.1%, 0.85 93.4%, 0.9 93.5%, 0.93 93.5%, 0.95 93.3%, 0.99 92.6%; the unweighed head was best at 0.7-0.8 (92.0%).
_CAUSE_HEAD_TRUSTED = 0.9
_RULE_THRESHOLDS = {"outcome": 0.9}  # without a model only the rep's explicit word is sure


def _rule_confidence(reading: NoteReading, note: _Part, found: Structured, commands: Commands | None) -> float:
    """How sure the rule reader alone is of its outcome (used only when no trained model is there)."""
    if command_outcome(commands) or found.outcome:
        return _SURE
    won, lost = note.score.won, note.score.lost + note.reason_weight
    if reading.outcome == "unknown":
        return 0.3 if won or lost else 0.5
    margin = abs(won - lost)
    return round(min(0.9, 0.45 + 0.1 * margin), 2)


def _model_text(subject: str, text: Text, forwarded: str | None, reading: NoteReading, stated_cause: str | None,
                found: Structured) -> NoteText:
    """The rule reader's findings, before commands and labelled lines, as the model's cues."""
    cues = cue_tokens(reading.outcome, reading.reasons, stated_cause, recontact=reading.recontact_on is not None,
                      people=bool(reading.decision_makers), forwarded=bool(forwarded), labelled=bool(found.spans))
    return NoteText(subject or "", text.clean, forwarded or "", cues)


def _apply_model(reading: NoteReading, guess: Prediction, found: Structured, commands: Commands | None,
                 original: str, stated_cause: str | None) -> str | None:
    """The model decides outcome, reasons and cause where no command or labelled line spoke; the cause it
    returns is the one `_finish` keeps."""
    if not (command_outcome(commands) or found.outcome):
        _replace(reading, "outcome", guess.outcome.value, guess.outcome.phrase, original)
    if found.reasons is None and guess.reasons.value:
        _replace(reading, "reasons", list(guess.reasons.value), guess.reasons.phrase, original)
    if found.reasons is not None:  # the rep listed the reasons: their default cause stands unless one is stated
        return stated_cause
    if found.cause or guess.cause.probability >= _CAUSE_HEAD_TRUSTED:
        return found.cause or guess.cause.value
    return stated_cause  # None: the default of the reasons read, which are the model's (`_finish`)


def _replace(reading: NoteReading, name: str, value, phrase: str | None, original: str) -> None:
    """Set a field from the model, with the phrase that weighed most as its evidence."""
    if getattr(reading, name) == value:
        return
    setattr(reading, name, value)
    reading.evidence = [item for item in reading.evidence if item.field != name]
    span = locate(phrase, original)
    if span:
        shown = value if isinstance(value, str) else ", ".join(value)
        reading.evidence.append(Evidence(name, original[span[0]:span[1]], span[0], span[1], shown, "note"))


def _confidences(reading: NoteReading, guess: Prediction | None, found: Structured, commands: Commands | None,
                 rule_confidence: float) -> dict[str, float]:
    """A confidence per field: the rep's explicit word is sure, the model's probability otherwise."""
    if guess is None:
        return {"outcome": rule_confidence}
    sure = bool(command_outcome(commands) or found.outcome)
    values = {"outcome": _SURE if sure else guess.outcome.probability}
    if reading.outcome == "lost":
        values["cause"] = _SURE if found.cause or found.reasons is not None else guess.cause.probability
        values["reasons"] = _SURE if found.reasons is not None else guess.reasons.probability
    return {name: round(value, 3) for name, value in values.items()}


@dataclass
class _RuleRead:
    """What the rule reader found, before the model, labelled lines and commands have their say."""

    text: Text
    found: Structured
    note: _Part
    reading: NoteReading
    stated_cause: str | None
    today: date
    forwarded: _Part | None = None  # the forwarded answer, once read
    read_forwarded: Callable[[], _Part] | None = None  # how to read it (None: the email forwards nothing)

    def answer(self) -> _Part | None:
        """The forwarded answer, read on first asking (None when there is none)."""
        if self.forwarded is None and self.read_forwarded is not None:
            self.forwarded = self.read_forwarded()
        return self.forwarded


def _read_by_rules(note: str, sent_at: datetime, tz: ZoneInfo, forwarded: str | None) -> _RuleRead:
    today = sent_at.astimezone(tz).date()
    day_first = not str(tz).startswith("America/")  # US reps write 3/4 for 4 March
    text = _prepare(note or "")
    found = read_structured(text, today, day_first)
    region = region_of(tz)
    note_part = _Part(_without_lines(text, found.spans), today, day_first, "note", region=region)
    read_forwarded = None
    if forwarded and forwarded.strip():
        def read_forwarded() -> _Part:
            return _Part(_prepare(_forwarded_text(forwarded)), today, day_first, "forwarded",
                         _forwarded_sender(forwarded), region)
    forwarded_part = read_forwarded() if read_forwarded and _needs_forwarded(note_part) else None
    reading = _merge(note_part, forwarded_part)
    if read_forwarded and any(person.name is None for person in reading.decision_makers):
        forwarded_part = forwarded_part or read_forwarded()
        reading.decision_makers = named_from(reading.decision_makers, forwarded_part.decision_makers)
    return _RuleRead(text, found, note_part, reading, found.cause or note_part.cause, today, forwarded_part,
                     read_forwarded)


def _judge(rules: _RuleRead, judges: Judges) -> None:
    """The model's judges choose the recontact phrase and the people among the rules' own candidates, in the order
    of authority of `_merge` (the rep's note, then the forwarded answer). The rules' choices still give the heads
    their cues and the outcome its next steps, as the heads were trained on them."""
    reading, note = rules.reading, rules.note
    if judges.recontact:
        found, asked = note.judged_recontact(judges.recontact), True
        if found.day is None and not found.none and rules.answer():
            found, asked = rules.forwarded.judged_recontact(judges.recontact), False  # the customer's words ask nothing
        reading.recontact_on, reading.recontact_asked = found.day, found.day is not None and asked and found.asked
        _replace_evidence(reading, "recontact_on", [found.evidence] if found.evidence else [])
    if judges.people:
        people, evidence = note.judged_people(judges.people)
        if not people and rules.answer():
            people, evidence = rules.forwarded.judged_people(judges.people)
        elif any(person.name is None for person in people) and rules.answer():
            people = named_from(people, rules.forwarded.judged_people(judges.people)[0])
        reading.decision_makers = people
        _replace_evidence(reading, "decision_makers", evidence)


def _replace_evidence(reading: NoteReading, name: str, evidence: list[Evidence]) -> None:
    reading.evidence = [item for item in reading.evidence if item.field != name] + evidence


def model_input(note: str, *, sent_at: datetime, tz: ZoneInfo, forwarded: str | None = None,
                subject: str = "") -> NoteText:
    """What the trained model reads of a note: the same text and cues `understand` gives it."""
    rules = _read_by_rules(note, sent_at, tz, forwarded)
    return _model_text(subject, rules.text, forwarded, rules.reading, rules.stated_cause, rules.found)


def candidates_of(note: str, *, sent_at: datetime, tz: ZoneInfo,
                  forwarded: str | None = None) -> list[tuple[Candidates, list[Candidate]]]:
    """The time phrases and the people the rules find in each part the reader reads (what the judges learn from)."""
    rules = _read_by_rules(note, sent_at, tz, forwarded)
    found = [(rules.note.date_candidates, rules.note.people_candidates)]
    if rules.forwarded:  # its dates count only where the note has none (`_merge`); its people name the note's roles
        dates_read = rules.note.recontact is None and not rules.note.no_recontact
        empty = Candidates(rules.forwarded.date_candidates.ctx, [], False)
        found.append((rules.forwarded.date_candidates if dates_read else empty, rules.forwarded.people_candidates))
    return found


# A note (or forwarded answer) is read in its first 20,000 characters. The longest of the 12,000 labelled notes
# is 2,315, the longest forwarded answer 980; some patterns of the rules cost time growing with the square of a
# text's length, so a hostile or runaway note (one sentence pasted thousands of times) must not hold a worker.
MOST_CHARS = 20_000


def understand(
    note: str,
    *,
    sent_at: datetime,
    tz: ZoneInfo,
    forwarded: str | None = None,
    commands: Commands | None = None,
    subject: str = "",
    model: NoteModel | None | bool = True,
) -> NoteReading:
    """Read the rep's note (and the forwarded customer text, if any) into a NoteReading.

    `model`: True loads the trained model (when there is one), None or False reads by the rules alone, and a
    NoteModel is used as given (training scores candidate models this way).
    """
    note, forwarded = note[:MOST_CHARS], forwarded[:MOST_CHARS] if forwarded else forwarded
    rules = _read_by_rules(note, sent_at, tz, forwarded)
    reading, found, stated_cause = rules.reading, rules.found, rules.stated_cause
    model = load_model() if model is True else model or None
    guess = None
    if model:
        guess = predict(model, _model_text(subject, rules.text, forwarded, reading, stated_cause, found))
        if judged := judges(model):
            _judge(rules, judged)
    _apply_structured(reading, found)
    _apply_commands(reading, commands, rules.today)
    if guess is not None:
        stated_cause = _apply_model(reading, guess, found, commands, rules.text.original, stated_cause)
    recontact_given = bool(found.recontact or (commands and commands.recontact))
    _finish(reading, stated_cause, recontact_given)
    reading.confidences = _confidences(reading, guess, found, commands,
                                       _rule_confidence(reading, rules.note, found, commands))
    reading.confidence = min(reading.confidences.values())
    reading.unsure = _unsure(reading.confidences, model.thresholds if model else _RULE_THRESHOLDS)
    return reading


def _unsure(confidences: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """The fields read with less confidence than their threshold (the rep's explicit word is always sure)."""
    return [name for name, value in confidences.items() if value < min(thresholds.get(name, 0.0), _SURE)]
