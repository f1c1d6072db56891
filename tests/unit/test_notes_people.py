"""Decision makers as the rules read them (model=None): named with a role, role-only, and people who are not part
of the decision. The learned judge that keeps or drops the rules' candidates is tested in test_notes_judges.py."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import DecisionMaker, understand
from service.notes.people import _whole_words

SENT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def people(note: str) -> set[DecisionMaker]:
    """The decision makers the rules read from `note`."""
    return set(understand(note, sent_at=SENT, tz=ROME, model=None).decision_makers)


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


def named_roles(note: str, forwarded: str | None = None) -> set[tuple[str | None, str | None]]:
    """The decision makers the rules read from `note` (and a forwarded answer), as (name, normalised role)."""
    reading = understand(note, sent_at=SENT, tz=ROME, forwarded=forwarded, model=None)
    return {(person.name, person.role) for person in reading.decision_makers}


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        # two people sharing one role written in the plural
        ("I brought it to the other partners (Dr O'Neill and Dr Byrne) and they voted it down.",
         {("Dr O'Neill", "partner"), ("Dr Byrne", "partner")}),
        ("Lost: senior partners Hughes and Amin decided to wait.", {("Hughes", "partner"), ("Amin", "partner")}),
        ("La ringrazio per avermi ricevuto ieri, unitamente ai consiglieri sig.ra Locatelli e sig. Benigni.",
         {("sig.ra Locatelli", "board member"), ("sig. Benigni", "board member")}),
        # an article, possessive and adjective between the name and its role
        ("Perso: Capasso, il nuovo socio, non è interessato.", {("Capasso", "partner")}),
        ("So che le perplessità di Edoardo, il vostro direttore creativo, non sono poche.",
         {("Edoardo", "direttore creativo")}),
        ("Lost for now: Sam, their interim CFO, wants to decide in January.", {("Sam", "cfo")}),
        # a name before "as" / "da" / "in qualità di" and its role
        ("Mr Aebi, as treasurer, was unconvinced and the decision waits.", {("Mr Aebi", "finance")}),
        ("Aggiudicata dall'ing. Caldara, in qualità di RUP, a un altro operatore.", {("ing. Caldara", "procurement")}),
        # public-sector and institutional titles
        ("L'assessore all'innovazione, l'avv. Mele, ci crede e decide lui.", {("avv. Mele", "councillor")}),
        ("Il Segretario Comunale, dott. Nicola Arduini, vuole il passaggio in Giunta prima di decidere.",
         {("Nicola Arduini", "general manager"), (None, "municipal council")}),
        ("Serve il parere del delegato del Rettore prima di decidere.", {(None, "rector")}),
        ("avevo mezz'ora col dirigente del settore amministrativo, il dott. Falco, e invece",
         {("dott. Falco", "head of department")}),
        ("il problema è il direttore di dipartimento prof. Ferrucci che decide da solo", {("prof. Ferrucci", "head of department")}),
        ("Raj (VP Eng, the EB) signed off Friday.", {("Raj", "vp eng")}),
        ("Their Chair, Mary Nagle, didn't want to force a vote.", {("Mary Nagle", "chair")}),
        # a longer title is not hidden by a role at the same word
        ("Il Direttore Sanitario deve approvare.", {(None, "medical director")}),
        ("La decisione spetta al comitato investimenti del gruppo.", {(None, "comitato investimenti del gruppo")}),
        ("Il comitato deciderà a marzo.", {(None, "committee")}),
        # bodies and chiefs that decide whenever they are named
        ("Il preventivo va bene, ma deve passare in assemblea straordinaria a novembre.", {(None, "assembly")}),
        ("The CEO is travelling until May.", {(None, "ceo")}),
    ],
)
def test_more_kinds_of_decision_makers(note, expected):
    assert named_roles(note) == expected


def test_a_signature_title_is_not_a_decision_maker():
    note = "Le confermo la ricezione dell'ordine.\n\nErnesto Malvezzi\nKey Account Manager Farmacie – Svizzera italiana"
    assert named_roles(note) == set()


def test_the_forwarded_answer_names_the_role_the_note_mentions():
    note = "Still alive, do not mark it lost: the MD is travelling. I'll follow up on 21 May."
    forwarded = ("Dear Harish,\nWe cannot confirm anything yet. Our MD, Mr. Shankar Hiremath, is travelling abroad and "
                 "the final approval rests with him.")
    assert named_roles(note, forwarded) == {("Shankar Hiremath", "ceo")}


@pytest.mark.parametrize("text", [
    "Giorgio's OK, and Giorgio is away; Giorgione and DiGiorgio are not him. giorgio_x, Giorgio2, _Giorgio, "
    "Giorgio_, àGiorgio, Giorgioè, Giorgio.",
    "All'inizio l'inizio, inizio; Ops ops OPS ops_",
    "",
])
@pytest.mark.parametrize("word", ["Giorgio", "inizio", "ops"])
def test_a_whole_word_is_counted_as_the_regex_counts_it(text, word):
    """The judge's features count a name's mentions without compiling a regex per name: the same counts."""
    assert _whole_words(text, word) == len(re.findall(rf"\b{re.escape(word)}\b", text))
    assert _whole_words(text, word, apostrophe=True) == len(re.findall(rf"(?<![\w']){re.escape(word)}(?!\w)", text))
    assert _whole_words(text, "") == 0


def candidates(note: str) -> set[tuple[str | None, str | None, str | None]]:
    """Everyone the rules offer the judge in `note`: (name, role, role as written)."""
    from service.notes.reading import candidates_of
    return {(c.name, c.role, c.written) for _, found in candidates_of(note, sent_at=SENT, tz=ROME, forwarded=None)
            for c in found}


@pytest.mark.parametrize(("note", "name"), [
    ("Lost for now: Marta Zielińska (CHRO) decides in March.", "Marta Zielińska"),
    ("Lost. Matej Kovač, their CEO, wants to wait.", "Matej Kovač"),
    ("Lost for now; Kevin McAllister (Operations Director) must sign off.", "Kevin McAllister"),
    ("Lost: Sal DeLuca (Owner) wants to think it over.", "Sal DeLuca"),
    ("On hold until Seán Ó Súilleabháin (board chair) is back.", "Seán Ó Súilleabháin"),
    ("Persa: decide l'ing. Della Penna, amministratore unico.", "Della Penna"),
])
def test_names_written_with_accents_prefixes_and_particles_are_read_whole(note, name):
    assert name in {found for found, _, _ in candidates(note)}


def test_a_name_pasted_with_decomposed_accents_is_read_whole_from_the_email():
    """Intake composes the accents (mime.composed): "Zielin" + a combining acute is "Zielińska", not "Zielin"."""
    from service.intake.mime import read_letter

    raw = "Content-Type: text/plain; charset=utf-8\n\nLost for now: Marta Zielin\u0301ska (CHRO) decides in March."
    assert "Marta Zielińska" in {found for found, _, _ in candidates(read_letter(raw.encode()).text)}


@pytest.mark.parametrize(("note", "name", "not_name"), [
    ("Lost for now. Herr Keller, the Group CIO, must approve.", "Keller", "Herr Keller"),
    ("Persa: decide il Maestro Ruocco, il fondatore.", "Ruocco", "Maestro Ruocco"),
    ("Understood Bob (owner) wants to wait for the spring.", "Bob", "Understood Bob"),
    ("Decidono Giordano e il CdA a settembre.", "Giordano", "Decidono Giordano"),
])
def test_an_honorific_or_a_sentences_first_word_is_not_part_of_the_name(note, name, not_name):
    names = {found for found, _, _ in candidates(note)}
    assert name in names and not_name not in names


def test_a_common_word_inside_a_sentence_stays_part_of_the_name():
    """Only a sentence's first word is suspect: "chase" is a common word, "Chase Miller" a name mid-sentence, and
    at a sentence's start too when the note also writes it inside one."""
    assert "Chase Miller" in {found for found, _, _ in candidates("Lost for now; we need Chase Miller (CFO) on board.")}
    assert "Chase Miller" in {found for found, _, _ in candidates(
        "Lost. Chase Miller (CFO) wants to wait; ask Chase again in May.")}


@pytest.mark.parametrize(("note", "name"), [
    ("Lost. Spoke to Don Draper, the CFO.", "Don Draper"),  # "Don" is an honorific in Italian only
    ("Perso. Ho parlato con Will Rossi, il titolare.", "Will Rossi"),  # "Will" is not a name in English notes only
])
def test_one_language_s_not_names_do_not_cut_another_s_names(note, name):
    assert name in {found for found, _, _ in candidates(note)}


@pytest.mark.parametrize(("note", "written"), [
    ("Persa per ora: decide il comitato di direzione a settembre.", "comitato di direzione"),
    ("Lo decide l'Assemblea straordinaria dei soci.", "Assemblea straordinaria dei soci"),
    ("Il consiglio ha detto di no; la giunta comunale deciderà a maggio.", "giunta comunale"),
    ("Deciderà il comitato investimenti del 9 ottobre.", "comitato investimenti"),
    ("Ne parlerà il consiglio di settembre.", "consiglio"),
    ("Perso. Il consiglio comunica che non procede.", "consiglio"),  # a verb, not the body's name
    ("Perso. Il consiglio di giovedi ha detto no.", "consiglio"),
    ("Perso: decide il consiglio di quest'anno.", "consiglio"),
])
def test_an_italian_body_is_written_with_the_words_that_name_it_not_a_date(note, written):
    assert written in {found for _, _, found in candidates(note)}


@pytest.mark.parametrize("title", ["Finance & General Purposes Committee", "Finance and Audit Committee",
                                   "Training & Competence Manager"])
def test_a_title_joining_two_words_with_and_is_read_whole(title):
    assert title in {found for _, _, found in candidates(f"Lost for now: their {title} decides in May.")}


def test_whose_committee_it_is_stays_as_written_but_not_in_the_role():
    assert (None, "vendor management committee", "bank's Vendor Management Committee") in candidates(
        "Lost. It has to go to the bank's Vendor Management Committee in May.")


@pytest.mark.parametrize(("title", "role"), [
    ("the firm's management committee", "management committee"),
    ("Coastal Carolina's Compliance Committee", "compliance committee"),
    ("the Parents' Committee", "parents' committee"),  # a plural owner is the body's own name
    ("the Women's Health Committee", "women's health committee"),
    ("Head of Children's Services", "head of children's services"),
])
def test_only_an_owner_before_the_title_is_left_out_of_the_role(title, role):
    from service.notes.people import _as_written
    assert _as_written(title) == role


def test_common_words_are_those_written_lowercase_and_never_capitalised_inside_a_sentence():
    from service.corpus.common_words import count_words
    texts = ["I understood it. Understood, thanks.", "we understood that", "they understood", "Frank said frank "
             "things, frank and fair, frank again", "I called Frank today", "Once more: once, once, once."]
    assert count_words({"en": texts}) == {"en": ["once", "understood"]}  # "frank": "called Frank" is a name


def test_a_runaway_note_is_read_in_its_first_twenty_thousand_characters():
    """One sentence pasted thousands of times must not hold a worker (some rules cost the square of the length):
    what stands past MOST_CHARS is not read, what stands before it is, with its evidence where it was written."""
    from service.notes.reading import MOST_CHARS
    head = "Lost for now: their CFO, Maria Rossi, must approve it.\n"
    note = head + "The CFO said no. " * 4000 + "\nAnd the board of Acme must approve too."
    assert len(note) > 3 * MOST_CHARS
    reading = understand(note, sent_at=SENT, tz=ROME, model=None)
    assert reading.outcome == "lost"
    assert DecisionMaker("Maria Rossi", "cfo") in reading.decision_makers
    assert DecisionMaker(None, "board") not in reading.decision_makers  # past the cap
    for evidence in reading.evidence:
        assert evidence.end <= MOST_CHARS and note[evidence.start:evidence.end] == evidence.phrase
