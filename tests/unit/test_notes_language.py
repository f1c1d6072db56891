"""Language detection per message, and evidence spans that point at the phrase read."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import understand
from service.notes.language import detect_language
from service.notes.phrases import languages

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Lost, they have no budget until April.", "en"),
        ("Perso, non hanno budget fino ad aprile.", "it"),
        ("Grazie ancora per la fiducia: sarà un piacere lavorare con voi.", "it"),
        ("", "en"),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_every_phrase_file_is_a_language():
    assert set(languages()) >= {"en", "it"}


def test_language_of_a_bare_forward_comes_from_the_customer():
    reading = understand("", sent_at=SENT, tz=ROME, forwarded="Al momento non ne abbiamo la necessità, grazie.")
    assert reading.language == "it"


def test_evidence_spans_point_at_the_phrase():
    note = "Lost. Their CFO, Maria Rossi, says no budget until April; call back then."
    reading = understand(note, sent_at=SENT, tz=ROME)
    assert reading.evidence
    for item in reading.evidence:
        if item.source == "note":
            assert note[item.start:item.end] == item.phrase
    fields = {item.field: item for item in reading.evidence}
    assert fields["reasons"].phrase == "no budget"
    assert fields["recontact_on"].phrase == "April"
    assert fields["recontact_on"].value == "2027-04-01"
    assert any("no budget" in line for line in reading.why())
