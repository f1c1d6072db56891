"""Reasons (each in English and Italian), cause by default and by the rep's own words, negation traps.
The phrase rules on their own (model=None): the trained model is scored on the corpora (test_notes_blind.py)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import understand

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def read(note: str):
    """The reading of a note."""
    return understand(note, sent_at=SENT, tz=ROME, model=None)  # the phrase rules alone


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("Lost. No budget left this year.", "budget"),
        ("Perso: il budget di quest'anno è già stato interamente allocato.", "budget"),
        ("Lost - not the right time, they're in the middle of a warehouse move.", "timing"),
        ("Perso, non è il momento: hanno la migrazione del gestionale in corso.", "timing"),
        ("Lost for now, she has to consult the board before committing.", "consult"),
        ("Perso per ora. Deve sentire il direttore finanziario.", "consult"),
        ("Lost - they went with a competitor.", "competitor"),
        ("Perso, hanno scelto un concorrente.", "competitor"),
        ("Lost, they don't need it: the in-house tool does the job.", "no_need"),
        ("Perso, non ne hanno bisogno.", "no_need"),
        ("Lost: too expensive for them.", "price"),
        ("Perso: prezzo troppo alto per loro.", "price"),
        ("Lost. They weren't convinced it would save them time.", "unconvinced"),
        ("Perso, non sono convinti del valore.", "unconvinced"),
        ("Lost. We never built any rapport.", "relationship"),
        ("Persa: non ci conoscono ancora, era il primo incontro.", "relationship"),
        ("Lost. It doesn't integrate with NetSuite, which is a blocker.", "fit"),
        ("Perso: la soluzione non è adatta alle loro esigenze.", "fit"),
        ("Lost, the company has been acquired.", "other"),
        ("Perso: l'azienda è stata acquisita.", "other"),
    ],
)
def test_each_reason_in_each_language(note, reason):
    reading = read(note)
    assert reading.outcome == "lost"
    assert reading.reasons == [reason]


@pytest.mark.parametrize(
    ("note", "cause"),
    [
        ("Lost. No budget.", "external"),
        ("Lost, they weren't convinced.", "internal"),
        ("Lost to a competitor.", "unknown"),
        ("Lost: no budget, and that's on me, I pushed too early.", "internal"),
        ("Perso per il prezzo, errore mio.", "internal"),
        ("Perso, ma non dipende da noi: l'azienda è stata acquisita.", "external"),
        ("Lost to a competitor - nothing we could have done.", "external"),
    ],
)
def test_cause(note, cause):
    assert read(note).cause == cause


def test_mixed_reasons_take_internal_first():
    reading = read("Lost: no budget and honestly they weren't convinced either.")
    assert (reading.reasons, reading.cause) == (["budget", "unconvinced"], "internal")


@pytest.mark.parametrize(
    "note",
    [
        "Lost to a competitor; price was not an issue.",
        "Lost to a competitor, not because of the price.",
        "Perso, ha scelto un concorrente; il prezzo non è un problema.",
    ],
)
def test_dismissed_reason_is_not_a_reason(note):
    assert read(note).reasons == ["competitor"]


def test_not_only_but_gives_both_reasons():
    reading = read("Lost: it came down not only to price but also to Vendorly already covering their offices.")
    assert reading.reasons == ["competitor", "price"]


def test_deferral_alone_is_timing_but_not_beside_another_reason():
    assert read("Lost, maybe next year.").reasons == ["timing"]
    assert read("No need right now, maybe next year.").reasons == ["no_need"]


def test_won_and_unknown_have_no_cause_nor_reasons():
    reading = read("Won - they signed after the budget was approved.")
    assert (reading.cause, reading.reasons) == (None, [])
