"""A rep's answer to Keepwarm's email, read by rules: confirm, stop, move the recontact, correct the outcome or the
cause, add decision makers or a lesson, or unreadable."""

from __future__ import annotations

from datetime import date

import pytest

from service.notes.answers import read_answer

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize(("words", "language"), [
    ("yes", "en"), ("Yes, send them.", "en"), ("ok send", "en"), ("Go ahead", "en"), ("OK\n\nTom Baker\nAcme", None),
    ("va bene", "it"), ("Confermo", "it"), ("sì manda", "it"), ("Si, mandale pure", "it"), ("ok", None),
    ("Yes\n\nTom Baker\nSales Director | Acme\n+44 20 1234 5678", "en"), ("Perfetto, grazie!\n\nTom", "it"),
])
def test_a_yes_confirms(words, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.language, answer.confirm) == ("confirm", language, True)
    assert (answer.outcome, answer.cause, answer.decision_makers, answer.lesson) == (None, None, (), None)


@pytest.mark.parametrize(("words", "language"), [
    ("don't email them", "en"), ("Cancel everything", "en"), ("stop", None), ("Do not contact them, please", "en"),
    ("non scrivergli", "it"), ("annulla tutto", "it"), ("Don't email them, they signed with a competitor.", "en"),
])
def test_a_stop_stops(words, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.language) == ("stop", language)


@pytest.mark.parametrize("words", ["don't send", "non mandare", "ok, don't send", "Yes... no, don't send them"])
def test_a_negated_send_never_reads_as_confirm(words):
    assert read_answer(words, TODAY).intent == "stop"


@pytest.mark.parametrize("words", ["don't send yet", "not now", "ok but not Jane", "wait"])
def test_a_hesitation_is_unreadable_not_a_yes(words):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.confirm, answer.outcome) == ("unreadable", False, None)


@pytest.mark.parametrize(("words", "day", "language"), [
    ("recontact in June instead", date(2027, 6, 1), "en"),
    ("ricontattare a settembre", date(2027, 9, 1), "it"),
    ("+3m", date(2027, 2, 22), None),
    ("2w", date(2026, 12, 6), None),
    ("2027-03-15", date(2027, 3, 15), None),
    ("call them in 3 months", date(2027, 2, 22), "en"),
    ("June", date(2027, 6, 1), "en"),
    ("tra tre mesi", date(2027, 2, 22), "it"),
])
def test_a_date_moves_the_recontact(words, day, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.recontact_on, answer.language) == ("move", day, language)
    assert answer.to_json()["recontact_on"] == day.isoformat()


@pytest.mark.parametrize(("words", "outcome", "cause", "language"), [
    ("actually we won", "won", None, "en"),
    ("Actually we won it last Friday!", "won", None, "en"),
    ("no, we won", "won", None, "en"),
    ("in realtà abbiamo vinto", "won", None, "it"),
    ("hanno firmato ieri", "won", None, "it"),
    ("actually we lost it to a competitor", "lost", None, "en"),
    ("in realtà abbiamo perso", "lost", None, "it"),
    ("it was my fault", None, "internal", "en"),
    ("it was on our side", None, "internal", "en"),
    ("è stata colpa mia", None, "internal", "it"),
    ("it was their budget, not us", None, "external", "en"),
    ("not my fault, their budget was cut", None, "external", "en"),
    ("colpa loro", None, "external", "it"),
])
def test_a_correction_of_the_outcome_or_the_cause(words, outcome, cause, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.outcome, answer.cause, answer.language) == ("correct", outcome, cause, language)
    assert answer.evidence  # the phrase that said so, as the note reader keeps it


def test_the_reasons_of_a_corrected_cause_are_read_too():
    assert read_answer("not my fault, their budget was cut", TODAY).reasons == ("budget",)
    assert read_answer("actually we won", TODAY).reasons == ()


@pytest.mark.parametrize(("words", "people", "language"), [
    ("also the CFO Maria Rossi must sign off", ({"name": "Maria Rossi", "role": "cfo"},), "en"),
    ("anche il direttore finanziario Maria Rossi deve firmare", ({"name": "Maria Rossi", "role": "cfo"},), "it"),
])
def test_decision_makers_are_added(words, people, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.decision_makers, answer.language, answer.confirm) == ("add", people, language,
                                                                                         False)


@pytest.mark.parametrize(("words", "lesson", "language"), [
    ("lesson: bring the case study next time", "bring the case study next time", "en"),
    ("Lesson learned - we lost it because we were late with the quote",
     "we lost it because we were late with the quote", "en"),
    ("lezione: portare il caso di studio la prossima volta", "portare il caso di studio la prossima volta", "it"),
    ("Ok\n\nLa prossima volta: chiamare prima\ndel preventivo\n\nTom", "chiamare prima del preventivo", "it"),
])
def test_a_lesson_is_kept_in_the_reps_words_and_nothing_else_is_read_in_it(words, lesson, language):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.lesson, answer.language) == ("add", lesson, language)
    assert (answer.outcome, answer.recontact_on) == (None, None)  # "we lost", "next time" in a lesson change nothing


def test_an_answer_may_say_several_things():
    answer = read_answer("Yes.\nAlso the CFO Maria Rossi must sign off.\nlesson: bring the case study", TODAY)
    assert (answer.intent, answer.confirm, answer.lesson) == ("add", True, "bring the case study")
    assert answer.decision_makers == ({"name": "Maria Rossi", "role": "cfo"},)
    answer = read_answer("it was my fault; recontact them in June", TODAY)
    assert (answer.intent, answer.cause, answer.recontact_on) == ("correct", "internal", date(2027, 6, 1))


@pytest.mark.parametrize("words", ["", "Thanks!", "what is this?", "Grazie", "no", "Hmm, what is this about?"])
def test_anything_else_is_unreadable(words):
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.recontact_on, answer.outcome, answer.cause) == ("unreadable", None, None, None)


def test_stop_wins_over_a_date_a_correction_and_a_yes():
    assert read_answer("stop, don't recontact in June", TODAY).intent == "stop"
    assert read_answer("we lost, don't email them", TODAY).intent == "stop"
    answer = read_answer("yes but recontact in June", TODAY)
    assert (answer.intent, answer.confirm) == ("move", True)


def test_a_past_date_is_no_move():
    assert read_answer("2026-01-10", TODAY).intent == "unreadable"


@pytest.mark.parametrize("words", ["ok", "OK!", "stop", "+3m", "2027-03-15", "Ok\n\nTom"])
def test_a_short_answer_takes_the_fallback_language(words):
    assert read_answer(words, TODAY).language is None
    assert read_answer(words, TODAY, language="it").language == "it"


@pytest.mark.parametrize(("words", "language"), [("sì", "it"), ("yes", "en"), ("giugno", "it"), ("June", "en")])
def test_one_word_that_only_one_language_uses_is_enough(words, language):
    assert read_answer(words, TODAY, language="it" if language == "en" else "en").language == language


def test_our_email_quoted_without_marks_is_not_read_as_the_reps_words():
    """A client that quotes without "> " or a header block: our footer lists "stop" and "actually we won"."""
    words = ("Recontact in June instead\n\nHi Tom,\nHere is what I understood from your note about Jane, and what "
             "happens next.\nWHAT I UNDERSTOOD\n- Outcome: lost\nOr just reply to this email: yes (send what is held)"
             " / stop (cancel the customer emails) / recontact in <month> / actually we won / it was my fault\n")
    answer = read_answer(words, TODAY)
    assert (answer.intent, answer.recontact_on, answer.outcome, answer.cause) == ("move", date(2027, 6, 1), None, None)
    italian = "va bene\n\nCiao Tom,\necco cosa ho capito dalla tua nota su Jane.\nCOSA HO CAPITO\n- Esito: persa\n"
    assert (read_answer(italian, TODAY).intent, read_answer(italian, TODAY).outcome) == ("confirm", None)


@pytest.mark.parametrize("words", ["Their procurement head, Luca Bianchi, also needs to approve",
                                   "I told them the price was fine but they went elsewhere"])
def test_a_yes_word_deep_in_the_answer_is_no_yes(words):
    """A wrong yes sends what the rep held back: "approve", "fine" further in are about something else."""
    assert read_answer(words, TODAY).confirm is False
