"""Keep only the labels two writers agree on: the writer's `expected.json` against a second, blind labeller's
`checker_labels.json`, per corpus folder.

    .venv/bin/python tests/notes_blind/agree.py tests/notes_blind/test/t1 [...]

A case is kept when both say the same outcome, and for a lost sale the same cause and the same set of reasons;
recontact windows that overlap (or no date for both); the same number of decision makers with the same names.
The others move to `dropped/` beside `cases/`, with both labels in `dropped/disagreements.json`; the figures of
agreement per field are printed. Running it again on a folder already reconciled changes nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path


def _names(people) -> Counter:
    return Counter((p.get("name") or "").strip().lower() for p in people or [])


def _window(labels: dict) -> tuple[str, str] | None:
    first = labels.get("recontact_on")
    return (first, labels.get("recontact_by") or first) if first else None


def disagreements(writer: dict, checker: dict) -> list[str]:
    """The fields on which the two labels differ."""
    fields = []
    if writer.get("outcome") != checker.get("outcome"):
        fields.append("outcome")
    elif writer.get("outcome") == "lost":
        if writer.get("cause") != checker.get("cause"):
            fields.append("cause")
        if set(writer.get("reasons") or []) != set(checker.get("reasons") or []):
            fields.append("reasons")
    ours, theirs = _window(writer), _window(checker)
    if (ours is None) != (theirs is None) or (ours and theirs and (ours[1] < theirs[0] or theirs[1] < ours[0])):
        fields.append("recontact")
    if _names(writer.get("decision_makers")) != _names(checker.get("decision_makers")):
        fields.append("decision_makers")
    return fields


def reconcile(folder: Path) -> Counter:
    expected_path, checker_path = folder / "expected.json", folder / "checker_labels.json"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    checker = json.loads(checker_path.read_text(encoding="utf-8"))
    dropped_dir = folder / "dropped"
    record_path = dropped_dir / "disagreements.json"
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else {}
    tally: Counter = Counter()
    for name in sorted(expected):
        if name not in checker:
            tally["not checked"] += 1
            continue
        fields = disagreements(expected[name], checker[name])
        tally.update(fields or ["agreed"])
        if fields:
            dropped_dir.mkdir(exist_ok=True)
            shutil.move(str(folder / "cases" / name), dropped_dir / name)
            record[name] = {"fields": fields, "writer": expected.pop(name), "checker": checker[name]}
    expected_path.write_text(json.dumps(expected, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                             encoding="utf-8")
    if record:
        record_path.write_text(json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                               encoding="utf-8")
    tally["kept"] = len(expected)
    return tally


def main(folders: list[str]) -> None:
    for folder in folders:
        print(folder, dict(reconcile(Path(folder))))


if __name__ == "__main__":
    main(sys.argv[1:])
