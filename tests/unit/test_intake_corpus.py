"""The intake corpus: every .eml read as its label says (gate reason, rep, customers, commands, the note)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.intake.reading import RepInfo, read_raw
from service.settings import load_settings
from tests.conftest import INTAKE, REPS

CORPUS = Path(__file__).parents[1] / "corpus" / "intake"
LABELS = json.loads((CORPUS / "expected.json").read_text()) if (CORPUS / "expected.json").exists() else {}
SETTINGS = load_settings({"intake_address": INTAKE, "internal_domains": ("acme.example",)}, environ={},
                         env_file=None)


class MemoryDirectory:
    """The conventions' reps, and the Message-IDs seen so far in this run."""

    def __init__(self):
        self.reps = {}
        for n, (email, name, tz, aliases) in enumerate(REPS, 1):
            for address in (email, *aliases):
                self.reps[address] = RepInfo(n, email, name, tz)
        self.ids: set[str] = set()

    def rep(self, address):
        return self.reps.get(address.lower())

    def seen(self, message_id):
        return message_id in self.ids


@pytest.fixture(scope="module")
def readings():
    directory = MemoryDirectory()
    found = {}
    for name in sorted(LABELS):
        reading = read_raw((CORPUS / name).read_bytes(), SETTINGS, directory,
                           now=datetime(2026, 11, 27, tzinfo=UTC))
        directory.ids.add(reading.message_id)
        found[name] = reading
    return found


def test_the_corpus_is_there():
    assert len(LABELS) >= 40
    assert sorted(LABELS) == sorted(p.name for p in CORPUS.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(LABELS))
def test_gate_rep_and_customers(name, readings):
    expected, reading = LABELS[name], readings[name]
    assert reading.ignored_reason == expected["ignored_reason"]
    if expected["ignored_reason"] not in ("bounce", "auto_reply", "own_mail"):
        assert (reading.rep or {}).get("email") == expected["rep"]
        assert sorted(c["email"] for c in reading.customers) == sorted(expected["customers"])
    if "bounced" in expected:
        assert set(expected["bounced"]) <= set(reading.bounced)


@pytest.mark.parametrize("name", sorted(n for n in LABELS if "commands" in LABELS[n]))
def test_plus_address_commands(name, readings):
    expected, commands = LABELS[name]["commands"], readings[name].commands
    assert commands is not None
    assert (commands["outcome"], commands["recontact"], commands["noemail"]) == \
        (expected.get("outcome"), expected.get("recontact"), expected.get("noemail", False))


@pytest.mark.parametrize("name", sorted(n for n in LABELS if LABELS[n].get("note_contains")
                                        or LABELS[n].get("note_excludes") or LABELS[n].get("encoding_check")))
def test_the_note_is_the_reps_own_words_decoded(name, readings):
    expected, note = LABELS[name], " ".join(readings[name].note.split())
    for phrase in expected.get("note_contains", []):
        assert " ".join(phrase.split()) in note
    for phrase in expected.get("note_excludes", []):
        assert " ".join(phrase.split()) not in note
    if expected.get("encoding_check"):
        text = note + " " + readings[name].subject
        assert expected["encoding_check"] in text or expected["encoding_check"] in _whole_text(name)


def _whole_text(name: str) -> str:
    from service.intake.mime import read_letter

    letter = read_letter((CORPUS / name).read_bytes())
    return letter.text + " ".join(a.text for a in letter.attached)


def test_every_corpus_file_reads_without_raising_and_is_keyed(readings):
    assert all(r.message_id.startswith("<") for r in readings.values())
