"""`keepwarm eval-notes DIR`: read a labelled corpus through the real pipeline and score every field.

DIR holds `cases/*.eml`, `expected.json` (file → expected fields) and optionally `reps.json` (the reps the
corpus assumes: [{"email", "name", "timezone", "aliases"}]); without it, the database's reps are used.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from service.intake.inbox import BatchDirectory
from service.intake.reading import Reading, RepInfo, read_raw
from service.notes.evaluate import FIELDS, Miss, Report, _same, format_report
from service.settings import Settings

SCORED = (*FIELDS, "customers")


def reps_from_file(path: Path) -> dict[str, RepInfo]:
    reps: dict[str, RepInfo] = {}
    for n, rep in enumerate(json.loads(path.read_text()), 1):
        info = RepInfo(n, rep["email"], rep["name"], rep.get("timezone", "UTC"))
        for address in (rep["email"], *rep.get("aliases", [])):
            reps[address.lower()] = info
    return reps


def evaluate_folder(folder: Path, settings: Settings, reps: dict[str, RepInfo]) -> Report:
    labels = json.loads((folder / "expected.json").read_text())
    report = Report()
    for name in sorted(labels):
        reading = read_raw((folder / "cases" / name).read_bytes(), settings, BatchDirectory(reps, {}),
                           now=datetime.now(UTC))
        _score(report, name, labels[name], reading)
    return report


def _score(report: Report, name: str, expected: dict, reading: Reading) -> None:
    got = reading.to_json()
    for field in SCORED:
        if field not in expected:
            continue
        value = sorted(c["email"] for c in got["customers"]) if field == "customers" else got[field]
        wanted = sorted(expected[field]) if field == "customers" else expected[field]
        report.total[field] = report.total.get(field, 0) + 1
        if _same(field, wanted, value):
            report.correct[field] = report.correct.get(field, 0) + 1
        else:
            report.misses.append(Miss(name, field, wanted, value))


def format_scores(report: Report) -> str:
    """The per-field table (customers included), then every miss."""
    lines = format_report(report).splitlines()
    if report.total.get("customers"):
        share = f"{report.correct.get('customers', 0)}/{report.total['customers']}"
        at = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
        lines.insert(at, f"{'customers':<16} {share:>13}  {100 * report.accuracy('customers'):8.1f}")
    return "\n".join(lines)
