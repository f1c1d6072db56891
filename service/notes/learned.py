"""The learned half of the note reader: outcome, cause and reasons from a scikit-learn model.

Phrase tables grown note by note chase the next unseen phrasing; a classifier trained on many writers' notes
generalises better (DESIGN.md, "Known pitfalls"). One feature matrix per note, three heads on it:
- features: TF-IDF of word 1–2-grams and character 2–5-grams of the subject and the rep's own words, word
  n-grams of the forwarded customer's answer, and the rule reader's cues as tokens (what the phrase tables
  found, and the labelled lines and plus-address commands, which stay authoritative in `reading.py`);
- heads: a multinomial logistic regression for the outcome, one for the cause of a lost sale (trained on lost
  notes only), and one yes/no logistic regression per reason.

The model is trained by `keepwarm train-notes` (service/corpus/train.py) from labelled files in the repository,
deterministically, and stored beside this module as `model/reader.joblib` with the thresholds calibrated on
the `dev` split. Loading it is lazy, like the phrase tables.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

ARTIFACT = Path(__file__).with_name("model") / "reader.joblib"
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
    import joblib

    return joblib.load(path)


# ---- predicting ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Heads:
    """Every head's weights side by side, so one product scores a note for all of them (sklearn's predict_proba
    per head and per note costs more in checks than in arithmetic), and the word n-grams' names for evidence."""

    weights: np.ndarray  # features x columns: outcome classes, cause classes, one column per reason
    intercepts: np.ndarray
    outcome: tuple[int, int]  # the column span of each head
    cause: tuple[int, int]
    reasons: dict[str, int]
    words: np.ndarray  # the names of the word n-gram features (they come first in the matrix)


def _heads(model: NoteModel) -> _Heads:
    cached = model.__dict__.get("_heads")
    if cached is None:
        cached = model.__dict__["_heads"] = _stack(model)
    return cached


def _stack(model: NoteModel) -> _Heads:
    columns, intercepts, spans = [], [], {}
    for name, head in (("outcome", model.outcome), ("cause", model.cause)):
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
    return _Heads(np.vstack(columns).T.copy(), np.array(intercepts), spans["outcome"], spans["cause"], reasons, words)


def predict(model: NoteModel, text: NoteText) -> Prediction:
    """The three heads' answers for one note, each with its probability and the phrase that weighed most."""
    heads = _heads(model)
    matrix = model.features.transform([text.row()]).tocsr()
    scores = np.asarray(matrix @ heads.weights).ravel() + heads.intercepts
    outcome = _class_guess(model.outcome.classes_, heads.outcome, scores, heads, matrix)
    cause = _class_guess(model.cause.classes_, heads.cause, scores, heads, matrix)
    probabilities = {name: float(1 / (1 + np.exp(-scores[column]))) for name, column in heads.reasons.items()}
    chosen = [name for name, p in probabilities.items() if p >= model.thresholds.get("reason", 0.5)]
    if not chosen and probabilities:
        chosen = [max(probabilities, key=probabilities.get)]
    sureness = min((max(p, 1 - p) for p in probabilities.values()), default=0.0)
    phrase = _top_phrase(heads, heads.reasons[chosen[0]], matrix) if chosen else None
    return Prediction(outcome, cause, Guess(chosen, sureness, phrase), probabilities)


def _class_guess(classes, span: tuple[int, int], scores: np.ndarray, heads: _Heads, matrix) -> Guess:
    """The most probable class of a multi-class head (softmax over its columns, as sklearn's multinomial)."""
    logits = scores[span[0]:span[1]]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
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


def locate(phrase: str | None, original: str) -> tuple[int, int] | None:
    """Where an n-gram of the vectoriser's lowercased words stands in the text."""
    if not phrase:
        return None
    pattern = r"\b" + r"\W+".join(re.escape(word) for word in phrase.split()) + r"\b"
    match = re.search(pattern, original, re.I)
    return (match.start(), match.end()) if match else None
