"""The learned half of the note reader: outcome, cause and reasons from a scikit-learn model.

Phrase tables grown note by note chase the next unseen phrasing; a classifier trained on many writers' notes
generalises better (DESIGN.md, "Known pitfalls"). One feature matrix per note, three heads on it:
- features: TF-IDF of word 1–2-grams and character 2–5-grams of the subject and the rep's own words, word
  n-grams of the forwarded customer's answer, and the rule reader's cues as tokens (what the phrase tables
  found, and the labelled lines and plus-address commands, which stay authoritative in `reading.py`);
- heads: a multinomial logistic regression for the outcome, one for the cause of a lost sale (trained on lost
  notes only), and one yes/no logistic regression per reason;
- clauses: a reason is usually said in one sentence of a long note, and the whole note's n-grams drown it in
  greetings, next steps and signatures. So a second yes/no head per reason reads each clause of the note on
  its own (fitted on every clause of the lost notes, each clause carrying its note's reasons: the greetings
  common to every reason learn nothing), and a reason's probability is the mean of the note head's and of the
  most telling clause's. Grouped cross-validation on train (five folds by writer, 1,593 lost notes): the set of
  reasons right 70.1% with the note heads alone, 75.0% with the clauses; the clause that decided is the
  evidence;
- a stacker (`ReasonStack`, `stack_rows`): the clause heads learn the greetings of a note as well as its telling
  sentence, so sharpened twins are fitted on the one clause of each note that the first heads find tells each
  of its reasons best; a logistic regression then weighs, per reason, the note head's, the clause heads' and the
  sharpened heads' probabilities, each head's first and second choices, the runner-up clause and the rules'
  reasons. It is fitted on the heads' answers for writers they were not fitted on (five folds by corpus folder).
  Grouped cross-validation on train b1-b51 (4,252 lost notes): the set of reasons right 75.0% -> 77.8%;
- the outcome the same way (`OutcomeStack`, `outcome_row`): a clause head for the outcome (every clause of a note
  carrying the note's outcome, read through the reasons' clause vectoriser) and a multinomial logistic
  regression over the note head's probabilities and the clauses' highest and mean ones, fitted on answers for
  writers the heads were not fitted on. Grouped cross-validation on train b1-b57 (7,177 blind notes): the
  outcome right 95.9% -> 97.3%, won and open deals 92.2% -> 97.0%. Its readings of those held-out writers also
  set a guard on the outcome's threshold: at or above it, at most one in a thousand of the notes read plans the
  wrong kind of customer email (`train.wrong_kind_guard`). A model whose outcome heads disagree on the classes
  (or know only two) lets the note head decide;
- sets: the most probable reason is always read, a second one only when the two go together in train
  (`choose_reasons`);
- judges of the rules' candidates (`Weighing`, `judges`): the date grammar finds every time phrase and the people
  rules find every role, title and bracketed name; hand-set scores and filters chose among them. Two logistic
  regressions trained on the blind corpus now choose instead, from what the rules found of each candidate (the
  form of a time phrase, its preposition and recontact verbs, how the rules scored it; for a person, how they were
  found, their role, which filter would drop them) and the words around it: which phrase is the recontact date
  (or none), and which people take part in the decision. They only choose: every date and person still comes from
  a phrase the rules found, with its evidence. The rules' own choices still give the heads their cues. The
  people's judge looks twice (`PeopleRanking`, `ranking_rows`): the first look weighs each candidate alone, the
  second its first probability beside the others' of the same part of the note (its rank, how many reach the
  cut, the best of the others, its kind), fitted on the first look's answers for writers it was not fitted on.
  Grouped cross-validation on train b1-b69 (8,724 notes): decision makers 75.95% -> 76.55%.

The model is trained by `keepwarm train-notes` (service/corpus/train.py) from labelled files in the repository,
deterministically, and stored beside this module as `model/reader.pickle.gz` with the thresholds calibrated on
the `dev` split. Loading it is lazy, like the phrase tables.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from service.notes.people import KINDS

logger = logging.getLogger(__name__)

ARTIFACT = Path(__file__).with_name("model") / "reader.pickle.gz"
_GZIP = b"\x1f\x8b"
_WORD = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class NoteText:
    """What the model reads of one email."""

    subject: str
    note: str
    forwarded: str
    cues: str

    def row(self) -> dict[str, str]:
        return {"text": f"{self.subject}\n{self.note}", "forwarded": self.forwarded, "cues": self.cues}


@dataclass
class NoteModel:
    """The fitted vectoriser and heads, the calibrated thresholds, and where they came from."""

    features: object
    outcome: object
    cause: object
    reasons: dict[str, object]
    # "outcome", "cause", "reasons": the confidences calibrated on dev (below them a field is unsure);
    # "reason": the probability at which one reason is chosen.
    thresholds: dict[str, float]
    trained_on: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # The clause reader (None in a model trained without it): its vectoriser and one head per reason.
    clause_features: object | None = None
    clause_reasons: dict[str, object] = field(default_factory=dict)
    # The pairs of reasons that go together often enough in train to be read together (None in a model trained
    # without them: every reason at or above the threshold is chosen).
    reason_pairs: list[tuple[str, str]] | None = None
    # The judges of the rules' candidates (None in a model trained without them: the rules' own choice stands):
    # which time phrase is the recontact date, and which people take part in the decision.
    recontact: Weighing | None = None
    people: Weighing | None = None
    # The reasons' sharpened clause heads and the stacker (None in a model trained without them: the note and
    # clause heads are averaged): clause heads fitted on the one clause of each lost note that tells each of its
    # reasons best, and a logistic regression that weighs every head's probability of a reason, fitted on their
    # answers for notes of writers they were not fitted on.
    clause_sharp: dict[str, object] | None = None
    reason_stack: ReasonStack | None = None
    # The outcome's clause head and stacker (None in a model trained without them: the note head decides): a
    # multinomial head over the clause features (every clause carrying its note's outcome), and a logistic
    # regression over the note head's probabilities and the clauses' highest and mean ones, fitted like the
    # reasons' stacker on answers for writers the heads were not fitted on.
    clause_outcome: object | None = None
    outcome_stack: OutcomeStack | None = None
    # The people's judge's second look (None in a model trained without it: the first look's cut decides).
    people_ranking: PeopleRanking | None = None


@dataclass(frozen=True)
class ReasonStack:
    """The stacker of the reasons' heads: a reason's probability is the sigmoid of its features (`stack_rows`)
    times the weights plus the intercept."""

    weights: np.ndarray
    intercept: float


@dataclass(frozen=True)
class OutcomeStack:
    """The stacker of the outcome's heads: a softmax over its features (`outcome_row`) times the weights (one row
    per class, in `classes` order) plus the intercepts."""

    classes: tuple[str, ...]
    weights: np.ndarray
    intercepts: np.ndarray
    # The lowest confidence at or above which at most one in a thousand of train's out-of-fold readings would plan
    # the wrong kind of customer email (calibration raises the outcome's threshold to it: dev alone is too small
    # a sample for a guard meant to let none through).
    guard: float = 0.0


@dataclass(frozen=True)
class Weighing:
    """A logistic regression over named features, kept as its weights: a candidate's probability is the sigmoid of
    the intercept plus the weights of the features it has (a handful per candidate: a dict lookup each)."""

    weights: dict[str, float]
    intercept: float
    cut: float  # the probability at or above which a candidate is taken

    def probability(self, features: dict[str, float]) -> float:
        total = self.intercept + sum(self.weights.get(name, 0.0) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, total))))


@dataclass(frozen=True)
class PeopleRanking:
    """The people's judge's second look: each candidate's first probability (`Weighing`) beside the others' of the
    same part of the note (`ranking_rows`), weighed by a logistic regression fitted on the first look's answers for
    writers it was not fitted on. The first look weighs each candidate alone; the second sees that a note which
    names someone deciding rarely names nobody, and which of two readings of one role is the likelier."""

    weights: np.ndarray
    intercept: float
    cut: float

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(rows @ self.weights + self.intercept, -50.0, 50.0)))


def ranking_rows(rows: list[dict[str, float]], probabilities: list[float], cut: float) -> np.ndarray:
    """The second look's features of one part's candidates: a candidate's first probability (and its log-odds), its
    rank among the part's candidates, how many reach the first look's `cut`, the best of the others, whether it is
    named, its kind (people.py `KINDS`), and its log-odds and being first by kind."""
    scored = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-scored, kind="stable")
    rank = np.empty(len(scored), dtype=int)
    rank[order] = np.arange(len(scored))
    best, runner_up = (scored[order[0]] if len(scored) else 0.0), (scored[order[1]] if len(scored) > 1 else 0.0)
    above = int((scored >= cut).sum())
    out = []
    for i, row in enumerate(rows):
        odds = math.log(max(scored[i], 1e-6) / max(1.0 - scored[i], 1e-6))
        kinds = [float(f"kind={kind}" in row) for kind in KINDS]
        first = float(rank[i] == 0)
        out.append([odds, scored[i], first, float(rank[i] == 1), min(above, 4) / 4,
                    float(runner_up if rank[i] == 0 else best), float(above == 0), first * float(above == 0),
                    float(row.get("named=True", 0.0) > 0), *kinds, *(odds * one for one in kinds),
                    *(first * one for one in kinds)])
    return np.array(out, dtype=np.float64).reshape(len(rows), 9 + 3 * len(KINDS))


@dataclass(frozen=True)
class Judges:
    """What the model lends the rule reader: a chooser of the recontact phrase and a judge of the people found."""

    recontact: Callable[[list[dict[str, float]]], int | None] | None = None
    people: Callable[[list[dict[str, float]]], list[float | None]] | None = None


def judges(model: NoteModel | None) -> Judges | None:
    """The model's judges of the rules' candidates, or None when it has none."""
    if model is None or (model.recontact is None and model.people is None):
        return None
    recontact, people, ranking = model.recontact, model.people, model.people_ranking

    def choose(rows: list[dict[str, float]]) -> int | None:
        """The most probable phrase (the later one on a tie), or None when none reaches the cut."""
        scored = [(recontact.probability(row), index) for index, row in enumerate(rows)]
        probability, index = max(scored)
        return index if probability >= recontact.cut else None

    def keep(rows: list[dict[str, float]]) -> list[float | None]:
        """Each candidate's probability when it reaches the cut, else None."""
        scored = [people.probability(row) for row in rows]
        if ranking is not None and rows:
            return [float(probability) if probability >= ranking.cut else None
                    for probability in ranking.probabilities(ranking_rows(rows, scored, people.cut))]
        return [probability if probability >= people.cut else None for probability in scored]

    return Judges(choose if recontact else None, keep if people else None)


@dataclass(frozen=True)
class Guess:
    """One field's value as the model sees it: the value, its probability and the words that weighed most."""

    value: object
    probability: float
    phrase: str | None


@dataclass(frozen=True)
class Prediction:
    outcome: Guess
    cause: Guess
    reasons: Guess
    reason_probabilities: dict[str, float]


# ---- features (module-level functions: the fitted pipeline is pickled) ----------------------------------------

def column_text(rows) -> list[str]:
    return [row["text"] for row in rows]


def column_forwarded(rows) -> list[str]:
    return [row["forwarded"] for row in rows]


def column_cues(rows) -> list[str]:
    return [row["cues"] for row in rows]


_CLAUSE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+|\s[-–—]\s")
_SHORTEST_CLAUSE = 8  # characters: "Hi Tom," and "Thanks" say nothing of a reason


def clauses(row: dict[str, str]) -> list[str]:
    """The clauses of the rep's words and of the forwarded answer: sentences, lines and dash-joined asides."""
    found = [piece.strip() for part in (row["text"], row["forwarded"]) for piece in _CLAUSE_BREAK.split(part or "")]
    return [piece for piece in found if len(piece) >= _SHORTEST_CLAUSE] or [row["text"][:200]]


def cue_tokens(outcome: str, reasons: list[str], stated_cause: str | None, *, recontact: bool, people: bool,
               forwarded: bool, labelled: bool) -> str:
    """The rule reader's findings as tokens the model can weigh."""
    tokens = [f"rule_outcome_{outcome}", *(f"rule_reason_{reason}" for reason in reasons)]
    tokens += [f"rule_cause_{stated_cause}"] if stated_cause else []
    flags = {"recontact": recontact, "people": people, "forwarded": forwarded, "labelled": labelled}
    tokens += [f"rule_{name}" for name, on in flags.items() if on]
    return " ".join(tokens)


# ---- loading ---------------------------------------------------------------------------------------------------

@cache
def load_model(path: Path = ARTIFACT) -> NoteModel | None:
    """The trained model, or None when no artifact is there (the rule reader then stands alone)."""
    if not path.exists():
        logger.warning("no trained note model at %s: the rule reader stands alone (keepwarm train-notes)", path)
        return None
    data = path.read_bytes()
    if data.startswith(_GZIP):
        import gzip
        import pickle

        # Python's own C unpickler: joblib.load unpickles with the pure-Python one, and the vectorisers' 300,000
        # vocabulary entries took it 3 to 5 s (0.4 s here), paid by every process that reads a note
        model = pickle.loads(gzip.decompress(data))
    else:  # a model saved with joblib before 2026-12-07
        import io

        import joblib

        model = joblib.load(io.BytesIO(data))
    model.__dict__.pop("_heads", None)  # a cache of this module's own making, rebuilt on first use
    return model


# ---- predicting ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Heads:
    """Every head's weights side by side, so one product scores a note for all of them (sklearn's predict_proba
    per head and per note costs more in checks than in arithmetic), and the word n-grams' names for evidence."""

    weights: np.ndarray  # features x columns: outcome classes, cause classes, one column per reason
    intercepts: np.ndarray
    outcome: tuple[int, int]  # the column span of each head (empty for a head the model lacks)
    cause: tuple[int, int]
    reasons: dict[str, int]
    words: np.ndarray  # the names of the word n-gram features (they come first in the matrix)
    features: tuple = ()  # the note's vectorisers (_Vectoriser) and the matrix width
    # clause features x reasons in the order of `reasons`, then as many sharpened heads when the model has them,
    # then the outcome's clause head's classes (their column span in `clause_outcome`, empty without it)
    clause_weights: np.ndarray | None = None
    clause_intercepts: np.ndarray | None = None
    clause_features: tuple = ()
    clause_outcome: tuple[int, int] = (0, 0)
    # the model's outcome stacker when its heads can feed it (the same three classes in the same order), else None
    outcome_stack: OutcomeStack | None = None


def _heads(model: NoteModel) -> _Heads:
    cached = model.__dict__.get("_heads")
    if cached is None:
        cached = model.__dict__["_heads"] = _stack(model)
    return cached


def _stack(model: NoteModel) -> _Heads:
    columns, intercepts, spans = [], [], {}
    for name, head in (("outcome", model.outcome), ("cause", model.cause)):
        if head is None:  # a model fitted for the reasons alone (the stacker's folds)
            spans[name] = (len(columns), len(columns))
            continue
        spans[name] = (len(columns), len(columns) + len(head.classes_))
        if len(head.classes_) == 2:  # a binary head scores its second class only: softmax([0, z]) is sigmoid(z)
            columns += [np.zeros_like(head.coef_[0]), head.coef_[0]]
            intercepts += [0.0, head.intercept_[0]]
        else:
            columns += list(head.coef_)
            intercepts += list(head.intercept_)
    reasons = {}
    for name, head in model.reasons.items():
        reasons[name] = len(columns)
        columns.append(head.coef_[0])
        intercepts.append(head.intercept_[0])
    words = model.features.transformer_list[0][1].steps[-1][1].get_feature_names_out()
    clause_weights = clause_intercepts = None
    clause_features: tuple = ()
    clause_outcome = (0, 0)
    if getattr(model, "clause_features", None) is not None:
        heads = [model.clause_reasons[name] for name in reasons]
        heads += [model.clause_sharp[name] for name in reasons] if getattr(model, "clause_sharp", None) else []
        rows = [head.coef_[0] for head in heads]
        clause_intercepts = [head.intercept_[0] for head in heads]
        head = getattr(model, "clause_outcome", None)
        if head is not None and model.outcome is not None and len(head.classes_) > 2 \
                and list(head.classes_) == list(model.outcome.classes_):
            clause_outcome = (len(rows), len(rows) + len(head.classes_))
            rows += list(head.coef_)
            clause_intercepts += list(head.intercept_)
        clause_weights = np.ascontiguousarray(np.vstack(rows).T, dtype=np.float64)
        clause_intercepts = np.array(clause_intercepts)
        clause_features = _vectorisers(model.clause_features)
    # Row-major float64 like the features (the artifact stores float32): a product with a matrix of another type or
    # layout converts the whole matrix for every note (1.7 ms a note instead of 0.05).
    weights = np.ascontiguousarray(np.vstack(columns).T, dtype=np.float64)
    stack = getattr(model, "outcome_stack", None)
    usable = stack is not None and clause_outcome[1] > 0 and list(stack.classes) == list(model.outcome.classes_) \
        and stack.weights.shape[0] == len(stack.classes)
    return _Heads(weights, np.array(intercepts), spans["outcome"], spans["cause"], reasons, words,
                  _vectorisers(model.features), clause_weights, clause_intercepts, clause_features, clause_outcome,
                  stack if usable else None)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-values))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Per row, as sklearn's multinomial heads."""
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


# ---- vectorising without sklearn's per-call checks -------------------------------------------------------------

@dataclass(frozen=True)
class _Vectoriser:
    """One fitted vectoriser of a FeatureUnion, applied as sklearn does (its own analyzer, vocabulary, sublinear tf,
    idf and L2 norm) but without the input checks that cost more than the arithmetic on one short text: the
    numbers are sklearn's to the rounding (tests/unit/test_notes_learned.py compares them)."""

    pick: str | None  # the column of a note's row it reads, or None when it is given the text itself
    analyse: Callable[[str], list[str]] | None  # sklearn's analyser, for parts not read a word at a time
    vocabulary: dict
    idf: np.ndarray | None
    sublinear: bool
    binary: bool
    normalise: bool
    offset: int
    words: _CharWords | None = None  # character n-grams inside words: read a word at a time, remembered


# Words remembered per vectoriser, and the longest remembered: a word's columns take up to about 1 KB, so at most
# some 20 MB each; a word longer (an address, a link, a code) is read each time. When full, the memory is emptied
# and fills again with the words of the notes that follow (a worker runs for weeks).
_MOST_WORDS = 20_000
_LONGEST_WORD = 24
_WHITE_RUNS = re.compile(r"\s\s+")  # sklearn's own whitespace normalising before a char_wb split


@dataclass(frozen=True)
class _CharWords:
    """sklearn's `char_wb` analysis, word by word: a word's character n-grams (padded with a space each side)
    depend on that word alone, so the vocabulary columns of each word are found once and remembered. Rep notes
    repeat their words (greetings, names, the note read again clause by clause), and finding the n-grams and
    looking each up was most of the reader's vectorising time."""

    preprocess: Callable[[str], str]
    smallest: int
    largest: int
    vocabulary: dict  # the vectoriser's: what `seen` remembers holds for it alone
    seen: dict = field(default_factory=dict)

    def columns(self, text: str) -> list[int]:
        """The vocabulary column of every n-gram of the text, as often as it occurs (sklearn's order aside)."""
        found: list[int] = []
        seen = self.seen
        for word in _WHITE_RUNS.sub(" ", self.preprocess(text)).split():
            columns = seen.get(word)
            if columns is None:
                columns = self._word_columns(word)
                if len(word) <= _LONGEST_WORD:
                    if len(seen) >= _MOST_WORDS:
                        seen.clear()
                    seen[word] = columns
            found.extend(columns)
        return found

    def _word_columns(self, word: str) -> tuple[int, ...]:
        """As sklearn's `_char_wb_ngrams` for one word, kept to the n-grams in the vocabulary."""
        vocabulary = self.vocabulary
        padded = f" {word} "
        width = len(padded)
        found = []
        for n in range(self.smallest, self.largest + 1):
            for start in range(max(width - n, 0) + 1):
                column = vocabulary.get(padded[start:start + n])
                if column is not None:
                    found.append(column)
            if width <= n:  # a word shorter than n is counted once, as sklearn does
                break
        return tuple(found)


_PICKS = {column_text: "text", column_forwarded: "forwarded", column_cues: "cues"}


def _vectorisers(union) -> tuple[tuple[_Vectoriser, ...], int]:
    """The parts of a fitted FeatureUnion, each with where its columns start, and the width of the whole."""
    parts, offset = [], 0
    for _, step in union.transformer_list:
        pick = None
        if hasattr(step, "steps"):  # FunctionTransformer(column picker) → vectoriser
            pick, step = _PICKS[step.steps[0][1].func], step.steps[-1][1]
        words = analyse = None
        if step.analyzer == "char_wb":
            words = _CharWords(step.build_preprocessor(), *step.ngram_range, step.vocabulary_)
        else:
            analyse = step.build_analyzer()
        parts.append(_Vectoriser(pick, analyse, step.vocabulary_, getattr(step, "idf_", None),
                                 bool(getattr(step, "sublinear_tf", False)), bool(step.binary),
                                 getattr(step, "norm", None) == "l2", offset, words))
        offset += len(step.vocabulary_)
    return tuple(parts), offset


def _vectorise(parts: tuple[_Vectoriser, ...], width: int, items: list) -> object:
    """A sparse matrix, one row per item (a note's row, or a text for parts that read the text itself)."""
    from scipy.sparse import csr_matrix

    indices, values, pointers = [], [], [0]
    total = 0
    for item in items:
        for part in parts:
            counted = _count(part, item if part.pick is None else item[part.pick])
            if counted is None:
                continue
            found, weights = counted
            if part.binary:
                weights[:] = 1.0
            elif part.sublinear:
                weights = np.log(weights) + 1.0
            if part.idf is not None:
                weights *= part.idf[found]
            if part.normalise:
                weights /= np.sqrt(np.dot(weights, weights))
            indices.append(found + part.offset)
            values.append(weights)
            total += len(found)
        pointers.append(total)
    if not indices:
        return csr_matrix((len(items), width))
    return csr_matrix((np.concatenate(values), np.concatenate(indices), np.array(pointers)), shape=(len(items), width))


def _count(part: _Vectoriser, text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The vocabulary columns the text has, and how often each occurs; None when it has none."""
    if part.words is not None:
        columns = part.words.columns(text)
        if not columns:
            return None
        found, times = np.unique(np.array(columns, dtype=np.int64), return_counts=True)
        return found, times.astype(np.float64)
    counts: dict[int, int] = {}
    for term in part.analyse(text):
        column = part.vocabulary.get(term)
        if column is not None:
            counts[column] = counts.get(column, 0) + 1
    if not counts:
        return None
    return (np.fromiter(counts, dtype=np.int64, count=len(counts)),
            np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))


@dataclass(frozen=True)
class ReasonParts:
    """What each reasons' head says of one note, every array in the order of `names`."""

    names: list[str]
    note: np.ndarray  # the note heads' probabilities
    clause: np.ndarray | None  # the clause heads': the most telling clause's probability
    clause_second: np.ndarray | None  # and the runner-up clause's
    sharp: np.ndarray | None  # the sharpened clause heads' most telling clause's
    telling: list[str]  # per reason, the clause that tells it best (its evidence)
    # the clause heads' highest probability in a clause other than the one telling the likeliest reason (a
    # second reason said in a sentence of its own), and how many clauses the note has
    apart: np.ndarray | None = None
    clauses: int = 0


@dataclass(frozen=True)
class _Clauses:
    """One note's clauses and every clause head's logit for each (clauses x the heads' columns)."""

    told: list[str]
    logits: np.ndarray


def _read_clauses(heads: _Heads, text: NoteText) -> _Clauses | None:
    if heads.clause_weights is None:
        return None
    told = clauses(text.row())
    return _Clauses(told, np.asarray(_vectorise(*heads.clause_features, told) @ heads.clause_weights)
                    + heads.clause_intercepts)


def _note_scores(heads: _Heads, text: NoteText) -> np.ndarray:
    return np.asarray(_vectorise(*heads.features, [text.row()]) @ heads.weights).ravel() + heads.intercepts


def reason_parts(model: NoteModel, text: NoteText, heads: _Heads | None = None,
                 scores: np.ndarray | None = None, read: _Clauses | None = None) -> ReasonParts:
    """Every reasons' head's answer for one note (the stacker's input, and its fitting's); `heads`, the note's
    `scores` and its clauses' `read` when the caller has them already."""
    heads = heads or _heads(model)
    if scores is None:
        scores = _note_scores(heads, text)
    names = list(heads.reasons)
    note = _sigmoid(np.array([scores[heads.reasons[name]] for name in names]))
    if heads.clause_weights is None:
        return ReasonParts(names, note, None, None, None, [])
    read = read or _read_clauses(heads, text)
    told = read.told
    width = heads.clause_outcome[0] if heads.clause_outcome[1] else read.logits.shape[1]
    probabilities = _sigmoid(read.logits[:, :width])
    first, sharp = probabilities[:, :len(names)], probabilities[:, len(names):]
    ordered = np.sort(first, axis=0)
    second = ordered[-2] if len(told) > 1 else np.zeros(len(names))
    telling = [told[i] for i in first.argmax(axis=0)]
    clause, sharpest = first.max(axis=0), (sharp.max(axis=0) if sharp.size else None)
    likeliest = int(np.argmax(note + clause + (sharpest if sharpest is not None else 0.0)))
    others = np.delete(first, int(first[:, likeliest].argmax()), axis=0)
    apart = others.max(axis=0) if len(others) else np.zeros(len(names))
    return ReasonParts(names, note, clause, second, sharpest, telling, apart, len(told))


def stack_rows(parts: ReasonParts, cues: str) -> np.ndarray:
    """The stacker's features, one row per reason: each head's probability of it, whether it is each head's first
    or second choice, each head's highest probability for any reason, whether the rules found it, how many
    reasons the rules found, how many clauses the note has (in tens), and which reason it is; then the note,
    clause and sharpened heads' log-odds of it (a probability tells 0.999 from 0.9 by a hair, and the two call
    for a second reason differently), and, per reason, its highest probability in a clause apart from the one
    telling the likeliest reason. Grouped cross-validation on train (five folds by writer, 6,056 lost notes,
    2026-12-07, thirteenth session): the set of reasons right 79.06% -> 79.66% with the last two (95 notes
    mended, 59 broken); a stacker fitted before them reads the first columns only (`predict`)."""
    answers = [parts.note, parts.clause, parts.sharp, parts.clause_second]
    answers = [a if a is not None else np.zeros(len(parts.names)) for a in answers]
    apart = parts.apart if parts.apart is not None else np.zeros(len(parts.names))
    found = {token.removeprefix("rule_reason_") for token in cues.split() if token.startswith("rule_reason_")}
    size = len(parts.names)
    rows = []
    ranks = [np.argsort(np.argsort(-answer)) for answer in answers]
    tops = [float(answer.max()) for answer in answers]
    length = parts.clauses / 10
    odds = [np.log(np.clip(answer, 1e-6, None) / np.clip(1 - answer, 1e-6, None)) / 5 for answer in answers[:3]]
    for j, name in enumerate(parts.names):
        row = [float(answer[j]) for answer in answers]
        row += [float(rank[j] == 0) for rank in ranks] + [float(rank[j] == 1) for rank in ranks] + tops
        row += [float(name in found), float(len(found)), length]
        row += [float(j == k) for k in range(size)]
        row += [float(one[j]) for one in odds] + [float(apart[j]) * (j == k) for k in range(size)]
        rows.append(row)
    return np.array(rows)


def outcome_row(model: NoteModel, text: NoteText, heads: _Heads | None = None, scores: np.ndarray | None = None,
                read: _Clauses | None = None) -> np.ndarray:
    """The outcome stacker's features for one note, each part in the note head's class order: the note head's
    probabilities, and the clause head's highest and mean probability of each class over the note's clauses."""
    heads = heads or _heads(model)
    if scores is None:
        scores = _note_scores(heads, text)
    read = read or _read_clauses(heads, text)
    note = _softmax(scores[heads.outcome[0]:heads.outcome[1]])
    each = _softmax(read.logits[:, heads.clause_outcome[0]:heads.clause_outcome[1]])
    return np.concatenate([note, each.max(axis=0), each.mean(axis=0)])


def _outcome_guess(model: NoteModel, text: NoteText, heads: _Heads, scores: np.ndarray, matrix,
                   read: _Clauses | None) -> Guess:
    """The stacker's outcome when the model has one, else the note head's; the evidence is the note head's word
    n-gram that pushed hardest towards the class chosen."""
    stack = heads.outcome_stack
    if stack is None or read is None:
        return _class_guess(model.outcome.classes_, heads.outcome, scores, heads, matrix)
    probabilities = _softmax(stack.weights @ outcome_row(model, text, heads, scores, read) + stack.intercepts)
    best = int(np.argmax(probabilities))
    column = heads.outcome[0] + list(model.outcome.classes_).index(stack.classes[best])
    return Guess(stack.classes[best], float(probabilities[best]), _top_phrase(heads, column, matrix))


def predict(model: NoteModel, text: NoteText) -> Prediction:
    """The three heads' answers for one note, each with its probability and the phrase that weighed most."""
    heads = _heads(model)
    matrix = _vectorise(*heads.features, [text.row()])
    scores = np.asarray(matrix @ heads.weights).ravel() + heads.intercepts
    read = _read_clauses(heads, text)
    outcome = _outcome_guess(model, text, heads, scores, matrix, read)
    cause = _class_guess(model.cause.classes_, heads.cause, scores, heads, matrix)
    parts = reason_parts(model, text, heads, scores, read)
    stack = getattr(model, "reason_stack", None)
    if stack is not None and parts.clause is not None:
        rows = stack_rows(parts, text.cues)
        combined = _sigmoid(rows[:, :len(stack.weights)] @ stack.weights + stack.intercept)
    else:
        combined = parts.note if parts.clause is None else (parts.note + parts.clause) / 2
    names = parts.names
    probabilities = {name: float(p) for name, p in zip(names, combined, strict=True)}
    chosen = choose_reasons(probabilities, model.thresholds.get("reason", 0.5), model.reason_pairs)
    sureness = min((max(p, 1 - p) for p in probabilities.values()), default=0.0)
    if not chosen:
        phrase = None
    elif parts.telling:
        phrase = parts.telling[names.index(chosen[0])]
    else:
        phrase = _top_phrase(heads, heads.reasons[chosen[0]], matrix)
    return Prediction(outcome, cause, Guess(chosen, sureness, phrase), probabilities)


def choose_reasons(probabilities: dict[str, float], cut: float, pairs: list[tuple[str, str]] | None) -> list[str]:
    """The most probable reason always, and a second one at or above the cut only when the two are a pair that
    goes together in train (a competitor and its price, a committee and its calendar). Independent cuts chose
    pairs that never occur ("timing" with "other") as readily as the common ones: grouped cross-validation on
    train (five folds by writer, 2,046 lost notes), the set of reasons right 73.0% with independent cuts, 74.2%
    with the pairs. Three reasons are one lost note in 230: never read."""
    if not probabilities:
        return []
    ranked = sorted(probabilities, key=lambda name: -probabilities[name])
    if pairs is None:  # a model trained before the pairs: every reason at or above the cut
        return [name for name in ranked if probabilities[name] >= cut] or ranked[:1]
    together = {frozenset(pair) for pair in pairs}
    best = ranked[0]
    second = next((name for name in ranked[1:] if frozenset((best, name)) in together), None)
    return [best, second] if second is not None and probabilities[second] >= cut else [best]


def _class_guess(classes, span: tuple[int, int], scores: np.ndarray, heads: _Heads, matrix) -> Guess:
    """The most probable class of a multi-class head (softmax over its columns, as sklearn's multinomial)."""
    probabilities = _softmax(scores[span[0]:span[1]])
    best = int(np.argmax(probabilities))
    return Guess(str(classes[best]), float(probabilities[best]), _top_phrase(heads, span[0] + best, matrix))


def _top_phrase(heads: _Heads, column: int, matrix) -> str | None:
    """The word n-gram of the note that pushed hardest towards the answer, as evidence."""
    width = len(heads.words)
    row = matrix[0]
    present = row.indices < width
    if not present.any():
        return None
    features = row.indices[present]
    weights = row.data[present] * heads.weights[features, column]
    best = int(np.argmax(weights))
    return str(heads.words[features[best]]) if weights[best] > 0 else None


_RUN = re.compile(r"\w+")


def locate(phrase: str | None, original: str) -> tuple[int, int] | None:
    """Where an n-gram of the vectoriser's lowercased words, or a clause, stands in the text: the first run of the
    text's words equal to the phrase's, whatever their case and whatever stands between them. Matched word by word
    (a regex built of the phrase cost more to compile than the rest of the note's evidence: a clause is long and
    always new); when no run matches, by that regex after all, whose case-blind matching a word's lower() does
    not always reproduce ("ALİ" lowers to four letters, a Greek sigma by what stands around it)."""
    given = _RUN.findall(phrase or "")
    if not given:
        return None
    wanted = [word.lower() for word in given]
    runs = list(_RUN.finditer(original))
    words = [run.group().lower() for run in runs]
    size = len(wanted)
    for start in range(len(words) - size + 1):
        if words[start] == wanted[0] and words[start:start + size] == wanted:
            return runs[start].start(), runs[start + size - 1].end()
    match = re.search(r"\b" + r"\W+".join(re.escape(word) for word in given) + r"\b", original, re.I)
    return (match.start(), match.end()) if match else None
