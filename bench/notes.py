"""Times `understand` (rules and the trained model) on the notes of one or more corpus folders, the first 1,000
of them, repeated to 1,000 when there are fewer: prints notes/s and ms/note. The notes are read through the real
intake path first (service.corpus.train.load_corpus), untimed. Give folders of 1,000 notes or more to time notes
the reader has never read in the process (its vectorisers remember the words they have seen).

    python bench/notes.py [tests/notes] [more folders...]
"""

from __future__ import annotations

import sys
import time
from itertools import cycle, islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.corpus.train import load_corpus  # noqa: E402
from service.notes import understand  # noqa: E402

NOTES = 1000


def main() -> None:
    """Load the corpus once, then time 1,000 readings."""
    folders = [Path(name) for name in sys.argv[1:]] or [Path("tests/notes")]
    loaded = [case.given for folder in folders for case in load_corpus(folder)][:NOTES]
    if not loaded:
        raise SystemExit(f"no labelled .eml files in {', '.join(map(str, folders))}")
    cold = _time_notes(loaded)  # the first run pays dateparser's start-up, as `keepwarm parse` does
    warm = _time_notes(loaded)
    for label, elapsed in (("cold", cold), ("warm", warm)):
        print(f"{label}: {NOTES} notes ({len(loaded)} distinct) in {elapsed:.2f} s: {NOTES / elapsed:.0f} notes/s, "
              f"{1000 * elapsed / NOTES:.2f} ms/note")


def _time_notes(loaded) -> float:
    """Seconds to read the corpus notes repeated to NOTES."""
    started = time.perf_counter()
    for note in islice(cycle(loaded), NOTES):
        understand(note.note, sent_at=note.sent_at, tz=note.tz, forwarded=note.forwarded, commands=note.commands,
                   subject=note.subject)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
