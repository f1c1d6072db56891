"""`keepwarm eval-notes DIR…`: read labelled corpora through the real pipeline and score every field.

A DIR is a corpus folder (`cases/*.eml`, `expected.json`, `reps.json`) or a split folder holding several
(tests/notes_blind/test). What counts as right:
- outcome, cause, language: the same value; reasons: the same set; customers: the same addresses;
- recontact: a date inside the label's window [`recontact_on`, `recontact_by`] (the day itself when the label
  gives no `recontact_by`), or no date when the label has none;
- decision makers: as many as labelled, each matched by name (when the label has one) or by role, as written
  or normalised.
Besides the per-field table: per-class outcome scores and the confusion table, the reliability table of each
field's confidence, and the customer emails of the wrong kind that would leave without the rep's confirmation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.corpus.compare import person_matches
from service.corpus.train import CORPUS_SETTINGS, Labelled
from service.intake.reading import read_raw
from service.intake.store import BatchDirectory
from service.notes.learned import NoteModel
from service.notes.model import OUTCOMES
from service.notes.reading import understand
from service.planning.plan import hold_for
from service.planning.policy import Policy

FIELDS = ("outcome", "cause", "reasons", "recontact_on", "decision_makers", "language", "customers")
CONFIDENT_FIELDS = ("outcome", "cause", "reasons")
_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 1.01)


@dataclass
class Scored:
    """One case: what was expected, what was read, and which fields were right."""

    name: str
    expected: dict
    got: dict
    right: dict[str, bool]


@dataclass
class Scores:
    cases: list[Scored] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)

    def accuracy(self, name: str, cases: list[Scored] | None = None) -> float | None:
        marks = [case.right[name] for case in (self.cases if cases is None else cases) if name in case.right]
        return sum(marks) / len(marks) if marks else None

    def count(self, name: str) -> int:
        return sum(name in case.right for case in self.cases)


# ---- reading and comparing ---------------------------------------------------------------------------------------

def read_case(case: Labelled, model: NoteModel | None | bool = True, *, customers: bool = False) -> dict:
    """The reading of one labelled case, as plain values."""
    given = case.given
    reading = understand(given.note, sent_at=given.sent_at, tz=given.tz, forwarded=given.forwarded,
                         commands=given.commands, subject=given.subject, model=model)
    got = {
        "outcome": reading.outcome, "cause": reading.cause, "reasons": reading.reasons,
        "recontact_on": reading.recontact_on.isoformat() if reading.recontact_on else None,
        "decision_makers": [{"name": p.name, "role": p.role, "written": p.written} for p in reading.decision_makers],
        "language": reading.language, "confidences": reading.confidences, "unsure": list(reading.unsure),
    }
    if customers:
        whole = read_raw(case.raw, CORPUS_SETTINGS, BatchDirectory({}, {}), now=datetime.now(UTC))
        got["customers"] = [person["email"] for person in whole.customers]
    return got


def _people_match(expected: list[dict], got: list[dict]) -> bool:
    """Each labelled person matched by a distinct person read, and nobody read beyond them."""
    if len(expected) != len(got):
        return False
    left = list(got)
    for person in expected:
        match = next((other for other in left if person_matches(person, other)), None)
        if match is None:
            return False
        left.remove(match)
    return True


def _in_window(expected: dict, got: str | None) -> bool:
    first, last = expected.get("recontact_on"), expected.get("recontact_by") or expected.get("recontact_on")
    if first is None or got is None:
        return first is None and got is None
    return first <= got <= last


def is_right(name: str, expected: dict, got: dict) -> bool:
    """Whether one field was read right, as the module's docstring defines it."""
    if name == "reasons":
        return set(expected.get("reasons") or []) == set(got.get("reasons") or [])
    if name == "recontact_on":
        return _in_window(expected, got.get("recontact_on"))
    if name == "decision_makers":
        return _people_match(expected.get("decision_makers") or [], got.get("decision_makers") or [])
    if name == "customers":
        return sorted(expected["customers"]) == sorted(got.get("customers") or [])
    return expected.get(name) == got.get(name)


def score(cases: list[Labelled], model: NoteModel | None | bool = True, *, customers: bool = False) -> Scores:
    """Every case read and compared field by field (cause and reasons only for labelled lost sales)."""
    scores = Scores()
    for case in cases:
        got = read_case(case, model, customers=customers)
        names = [n for n in FIELDS if n in case.labels and (n != "customers" or customers)]
        if case.labels.get("outcome") != "lost":
            names = [n for n in names if n not in ("cause", "reasons")]
        scores.cases.append(Scored(case.name, case.labels, got,
                                   {n: is_right(n, case.labels, got) for n in names}))
    return scores


# ---- the tables --------------------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "    -" if value is None else f"{100 * value:5.1f}"


def field_table(scores: Scores) -> list[str]:
    lines = [f"{'field':<16} {'right/total':>11}  accuracy%"]
    for name in FIELDS:
        total = scores.count(name)
        if total:
            right = sum(case.right.get(name, False) for case in scores.cases)
            lines.append(f"{name:<16} {f'{right}/{total}':>11}  {_pct(scores.accuracy(name))}")
    not_lost = [case for case in scores.cases if case.expected.get("outcome") in ("won", "unknown")]
    lines.append(f"{'outcome, won+unknown':<28}  {_pct(scores.accuracy('outcome', not_lost))}"
                 f"  ({len(not_lost)} notes)")
    return lines


def confusion_table(scores: Scores) -> list[str]:
    """Rows: the label; columns: what was read; then each class's recall and precision."""
    pairs = Counter((case.expected.get("outcome"), case.got["outcome"]) for case in scores.cases)
    lines = ["outcome confusion (rows: label, columns: read)", f"{'':<10}" + "".join(f"{o:>9}" for o in OUTCOMES)
             + f"{'recall%':>10}{'precision%':>12}"]
    for label in OUTCOMES:
        row = [pairs[(label, read)] for read in OUTCOMES]
        labelled, read_as = sum(row), sum(pairs[(other, label)] for other in OUTCOMES)
        recall = pairs[(label, label)] / labelled if labelled else None
        precision = pairs[(label, label)] / read_as if read_as else None
        lines.append(f"{label:<10}" + "".join(f"{n:>9}" for n in row) + f"{_pct(recall):>10}{_pct(precision):>12}")
    return lines


def reliability_table(scores: Scores) -> list[str]:
    """For each field: how often readings in each confidence band were right, and at or above the threshold."""
    lines = ["reliability (confidence band: readings, right%)"]
    for name in CONFIDENT_FIELDS:
        marked = [(case.got["confidences"].get(name), case.right[name]) for case in scores.cases
                  if name in case.right and case.got["confidences"].get(name) is not None]
        if not marked:
            continue
        cells = []
        for low, high in zip(_BINS, _BINS[1:], strict=False):
            band = [right for conf, right in marked if low <= conf < high]
            if band:
                cells.append(f"[{low:.2f},{min(high, 1):.2f}): {len(band)}, {_pct(sum(band) / len(band)).strip()}")
        lines.append(f"  {name}: " + "; ".join(cells))
        threshold = scores.thresholds.get(name)
        if threshold is not None:
            sure = [right for conf, right in marked if conf >= threshold]
            share = sum(sure) / len(sure) if sure else None
            lines.append(f"    at or above {threshold:.3f}: {len(sure)}/{len(marked)} readings, right "
                         f"{_pct(share).strip()}%")
    return lines


def wrong_kind(scores: Scores) -> tuple[int, int]:
    """Customer emails of the wrong kind (a won thank-you for a lost or open deal, or the reverse): how many the
    reading would plan, and how many of those would leave without the rep's confirmation under the default
    policy (hold when unsure)."""
    planned = [case for case in scores.cases if case.got["outcome"] in ("won", "lost")
               and case.got["outcome"] != case.expected.get("outcome")]
    unheld = [case for case in planned if "thank_you" not in _held_kinds(case)]
    return len(planned), len(unheld)


def _held_kinds(case: Scored) -> tuple[str, ...]:
    hold = hold_for(Policy(), case.got["unsure"], case.got["outcome"])
    return hold.kinds if hold else ()


def format_scores(scores: Scores, *, misses: bool = True) -> str:
    lines = field_table(scores) + [""] + confusion_table(scores) + [""] + reliability_table(scores)
    planned, unheld = wrong_kind(scores)
    lines += ["", f"customer emails of the wrong kind: {planned} planned, {unheld} not held for the rep"]
    if misses:
        lines += ["", "misses:"] + [
            f"  {case.name}  {name}: expected {case.expected.get(name)!r}  got {case.got.get(name)!r}"
            for case in scores.cases for name, right in case.right.items() if not right]
    return "\n".join(lines)
