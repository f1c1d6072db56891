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


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("Lost for now: Head of Ops (Karen Lowe) has to sign off anything new.",
         {DecisionMaker("Karen Lowe", "operations director")}),
        ("Perso per ora: il consulente informatico Enzo Marra deve approvare l'integrazione.",
         {DecisionMaker("Enzo Marra", "it consultant")}),
        ("Karen Lowe, our contact's boss, has to approve the spend.", {DecisionMaker("Karen Lowe", "boss")}),
        ("Lost: their CMIO has the final say on clinical systems.", {DecisionMaker(None, "cmio")}),
        ("Still open: Nadia Obi (CHRO) decides next month.", {DecisionMaker("Nadia Obi", "hr director")}),
        ("Non ancora: la decisione spetta al consiglio direttivo.", {DecisionMaker(None, "board")}),
        ("Deciderà insieme al suo commercialista di fiducia, il Dott. Enzo Bonino.",
         {DecisionMaker("Enzo Bonino", "accountant")}),
        ("La scelta dipende dal parere del suo socio, il Dott. Marco Allasia.", {DecisionMaker("Marco Allasia", "partner")}),
        ("La decisione spetta alla titolare, Sig.ra Graziella Rivetti, dopo la fiera.",
         {DecisionMaker("Graziella Rivetti", "owner")}),
        ("It's up to the owner, Mr Jenkins, to decide.", {DecisionMaker("Mr Jenkins", "owner")}),
        ("Ravi Menon, Head of QC, must approve the change.", {DecisionMaker("Ravi Menon", "head of qc")}),
        ("Kevin - the board approved the hosting project last night.", {DecisionMaker(None, "board")}),
    ],
)
def test_roles_written_many_ways(note, expected):
    assert people(note) == expected


@pytest.mark.parametrize(
    "note",
    [
        "Update on Nandi Hills Resorts (Mr. Abhishek Gowda, Owner - abhishek@nandihills.example). They do not need it.",
        "Referente: Sig. Ettore Bussi, amministrazione. Nessuna obiezione sul prezzo.",
        "Price was a concern for your Finance Director, Ms Reilly, whom I have copied; she approved the schedule.",
        "Gigi Collini, il direttore generale, è andato in pensione a gennaio.",
        "Mick Hogan, their ops manager, retired in September and the new buyer went elsewhere.",
    ],
)
def test_contacts_copied_and_former_people_are_left_out(note):
    assert people(note) == set()
