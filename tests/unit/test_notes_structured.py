"""Labelled lines override the prose; plus-address commands override the labelled lines."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from service.notes import Commands, DecisionMaker, understand

SENT = datetime(2026, 10, 14, 12, 40, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")

NOTE = """They liked it and I think they'll come round in spring, but for the system:

Outcome: lost
Reason: budget, consult
Recontact: 2027-02-01
Decision makers: Maria Rossi (CFO); the board
"""


def test_english_structured_lines():
    reading = understand(NOTE, sent_at=SENT, tz=LONDON)
    assert reading.outcome == "lost"
    assert reading.reasons == ["budget", "consult"]
    assert reading.cause == "external"
    assert reading.recontact_on == date(2027, 2, 1)
    assert set(reading.decision_makers) == {DecisionMaker("Maria Rossi", "cfo"), DecisionMaker(None, "board")}
    assert reading.confidence >= 0.9


def test_italian_structured_lines():
    note = "Esito: perso\nMotivo: prezzo\nRicontatto: marzo\nDecisori: dott. Marco Ferri, direttore finanziario"
    reading = understand(note, sent_at=SENT, tz=ZoneInfo("Europe/Rome"))
    assert (reading.outcome, reading.reasons, reading.recontact_on) == ("lost", ["price"], date(2027, 3, 1))
    assert reading.decision_makers == [DecisionMaker("Marco Ferri", "cfo")]
    assert reading.language == "it"


def test_structured_outcome_overrides_prose():
    reading = understand("They signed!\nOutcome: lost\nReason: price", sent_at=SENT, tz=LONDON)
    assert (reading.outcome, reading.reasons) == ("lost", ["price"])


def test_structured_recontact_accepts_words():
    reading = understand("Outcome: lost\nRecontact: in 3 months", sent_at=SENT, tz=LONDON)
    assert reading.recontact_on == date(2027, 1, 14)


def test_commands_override_structured_lines():
    reading = understand(NOTE, sent_at=SENT, tz=LONDON, commands=Commands(outcome="won", recontact="3m"))
    assert reading.outcome == "won"
    assert reading.recontact_on == date(2027, 1, 14)
    assert (reading.cause, reading.reasons) == (None, [])
