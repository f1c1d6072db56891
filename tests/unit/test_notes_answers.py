"""A rep's answer to Keepwarm's email, read by rules: confirm, stop, move the recontact, or unreadable."""

from __future__ import annotations

from datetime import date

import pytest

from service.notes.answers import read_answer

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(("words", "language"), [
    ("yes", "en"), ("Yes, send them.", "en"), ("ok send", "en"), ("Go ahead", "en"), ("OK\n\nTom Baker\nAcme", "en"),
    ("va bene", "it"), ("Confermo", "it"), ("sì manda", "it"), ("Si, mandale pure", "it"),
])
def test_a_yes_confirms(words, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.language) == ("confirm", language)


@pytest.mark.parametrize(("words", "language"), [
    ("don't email them", "en"), ("Cancel everything", "en"), ("stop", "en"), ("Do not contact them, please", "en"),
    ("non scrivergli", "it"), ("annulla tutto", "it"),
])
def test_a_stop_stops(words, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.language) == ("stop", language)


@pytest.mark.parametrize("words", ["don't send", "non mandare", "ok, don't send", "Yes... no, don't send them"])
def test_a_negated_send_never_reads_as_confirm(words):
    assert read_answer(words, TODAY).intent == "stop"


@pytest.mark.parametrize("words", ["don't send yet", "not now", "ok but not Jane", "wait"])
def test_a_hesitation_is_unreadable_not_a_yes(words):
    assert read_answer(words, TODAY).intent == "unreadable"


@pytest.mark.parametrize(("words", "day", "language"), [
    ("recontact in June instead", date(2027, 6, 1), "en"),
    ("ricontattare a settembre", date(2027, 9, 1), "it"),
    ("+3m", date(2027, 2, 22), "en"),
    ("2w", date(2026, 12, 6), "en"),
    ("2027-03-15", date(2027, 3, 15), "en"),
    ("call them in 3 months", date(2027, 2, 22), "en"),
    ("June", date(2027, 6, 1), "en"),
])
def test_a_date_moves_the_recontact(words, day, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.recontact_on, answer.language) == ("move", day, language)
    assert answer.to_json()["recontact_on"] == day.isoformat()


@pytest.mark.parametrize("words", ["", "Thanks!", "what is this?", "Grazie", "no"])
def test_anything_else_is_unreadable(words):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.recontact_on) == ("unreadable", None)


def test_stop_wins_over_a_date_and_a_date_over_a_yes():
    assert read_answer("stop, don't recontact in June", TODAY).intent == "stop"
    assert read_answer("yes but recontact in June", TODAY).intent == "move"


def test_a_past_date_is_no_move():
    assert read_answer("2026-01-10", TODAY).intent == "unreadable"
