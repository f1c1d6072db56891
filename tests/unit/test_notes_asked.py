"""Whether the rep asked for a recontact in so many words: planning writes that recontact whatever the cause."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import Commands, understand

SENT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def read(note: str, **options):
    return understand(note, sent_at=SENT, tz=ROME, model=None, **options)


@pytest.mark.parametrize("recontact, expected", [("2027-03-01", date(2027, 3, 1)), ("3m", date(2027, 2, 10))])
def test_a_plus_address_date_or_delay_is_the_reps_word(recontact, expected):
    reading = read("The demo did not land, my fault.", commands=Commands(outcome="lost", recontact=recontact))
    assert (reading.recontact_on, reading.recontact_asked) == (expected, True)


@pytest.mark.parametrize("note", [
    "Lost it, I pushed too hard. Recontact them in June.",
    "Persa, non li ho convinti con la demo. Ricontattare a giugno.",
    "Lost, the pitch was weak. I'll call them back in June to try again.",
])
def test_a_recontact_verb_that_names_the_date_is_the_reps_word(note):
    reading = read(note)
    assert reading.recontact_on is not None and reading.recontact_on.month == 6
    assert reading.recontact_asked


def test_a_labelled_line_is_the_reps_word():
    reading = read("Outcome: lost\nReason: unconvinced\nRecontact: 2027-04-15")
    assert (reading.recontact_on, reading.recontact_asked) == (date(2027, 4, 15), True)


def test_a_date_only_mentioned_is_not_a_request():
    reading = read("Lost: they did not like the demo. Their board meets in June.")
    assert not reading.recontact_asked


def test_a_date_in_the_customers_forwarded_answer_is_not_the_reps_word():
    reading = read("lost for now", forwarded="We have decided not to proceed. Please contact us again in June.")
    assert reading.recontact_on is not None and not reading.recontact_asked


def test_a_won_sale_asks_for_no_recontact():
    assert not read("Won! They signed today. Call them in June for the kickoff.").recontact_asked
