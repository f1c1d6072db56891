"""Decision makers: named with a role, role-only, and people who are not part of the decision."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import DecisionMaker, understand

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def people(note: str) -> set[DecisionMaker]:
    """The decision makers read from `note`."""
    return set(understand(note, sent_at=SENT, tz=ROME).decision_makers)


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("Lost for now: their CFO, Maria Rossi, must approve it.", {DecisionMaker("Maria Rossi", "cfo")}),
        ("Perso per ora. Deve sentire il direttore finanziario, dott. Marco Ferri.", {DecisionMaker("Marco Ferri", "cfo")}),
        ("Budget goes to the board and Helen Park (Procurement) handles the paperwork.",
         {DecisionMaker(None, "board"), DecisionMaker("Helen Park", "procurement")}),
        ("Lost for now, the board has to approve anything over 10k.", {DecisionMaker(None, "board")}),
        ("Lost: the IT director wants to decide after the audit.", {DecisionMaker(None, "it director")}),
        ("La decisione spetta al Consiglio di Amministrazione, che si riunirà il 18 novembre.", {DecisionMaker(None, "board")}),
    ],
)
def test_decision_makers(note, expected):
    assert people(note) == expected


@pytest.mark.parametrize(
    "note",
    [
        "Lost. I'll ask my manager whether we can offer a discount.",
        "Perso: tutto congelato finché non arriva il nuovo CIO.",
        "Thanks to Ian for the tour of the warehouse.",
    ],
)
def test_people_outside_the_decision_are_left_out(note):
    assert people(note) == set()


def test_name_split_across_a_line_break():
    note = "Capisco che la decisione finale spetti alla vostra CFO, dott.ssa Maria\nRossi, e che prima di agosto no."
    assert people(note) == {DecisionMaker("Maria Rossi", "cfo")}
