"""Generic phrasing rules (not corpus sentences): open recaps, decision processes, mentions vs complaints,
second-person notes, choosing another supplier, explicit denials, cause overrides, end of month, signatures."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service.notes import DecisionMaker, understand

SENT = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
ROME = ZoneInfo("Europe/Rome")


def read(note: str, forwarded: str | None = None):
    """The reading of a note."""
    return understand(note, sent_at=SENT, tz=ROME, forwarded=forwarded)


# ---- a recap of next steps with a decision process is an open deal, not a loss --------------------------------

@pytest.mark.parametrize("note", [
    "Good session today. Next steps: you'll walk the quote through with your finance director, who has to approve "
    "any new vendor, and I'll send the reference list tomorrow.",
    "Action items: they will present the deck to their steering committee before deciding. "
    "We'll reconnect in ten days to see where things stand.",
    "Ciao Paolo, riassumo: prima di decidere il vostro amministratore delegato vuole rivedere l'offerta; "
    "vi mando entro giovedì il preventivo aggiornato.",
    "Buongiorno, restiamo in attesa delle vostre considerazioni e dei vostri riscontri sulla proposta.",
])
def test_open_recap_with_process_is_unknown(note):
    reading = read(note)
    assert reading.outcome == "unknown"
    assert reading.reasons == []


@pytest.mark.parametrize("note", [
    "The owner has to sign off on anything this size and he won't look at it before spring. I'll call in March.",
    pytest.param(
        "Deve decidere il consiglio di amministrazione, che non se ne occuperà prima di febbraio. Li richiamo a marzo.",
        marks=pytest.mark.xfail(strict=True, reason="a known miss: read open at 0.98 by the eighth session's model "
                                "(b1-b65), a board still to decide read as a deal still open (nothing is sent, the "
                                "summary shows it open); open at 0.52 by the seventh's, lost by the sixth's")),
])
def test_process_with_deferral_is_still_a_loss(note):
    reading = read(note)
    assert reading.outcome == "lost" and reading.reasons[0] == "consult"  # "not before spring" may add timing


def test_price_merely_mentioned_is_not_a_loss():
    reading = read("Nice visit. I'll send the price list and two references; take your time with them and "
                   "let me know what you think.")
    assert reading.outcome == "unknown"


def test_surname_price_is_not_a_reason():
    reading = read("Lost - they signed with Globex, said Helen Price, their COO.")
    assert reading.reasons == ["competitor"]


def test_current_vendor_mentioned_in_a_price_complaint_is_not_a_competitor():
    reading = read("Lost on price: they think we cost double what they pay their current supplier.")
    assert reading.reasons == ["price"]


def test_requirements_met_is_not_a_fit_problem():
    reading = read("Lost. Both products met their requirements, but the other quote came in much lower than ours.",
                   None)
    assert "fit" not in reading.reasons and "price" in reading.reasons


# ---- choosing another supplier, hedged refusals, second person ------------------------------------------------

@pytest.mark.parametrize("note", [
    "I understand your board preferred to stay with a local installer they have used for years.",
    "Thanks for telling me: you decided to keep working with the firm that did your last rollout.",
    "Noted that they have switched to Initrode for the whole group.",
    "Ho saputo che sono passati a un altro fornitore della zona.",
    "Il servizio è stato affidato ad altra azienda dopo la gara.",
])
def test_choosing_another_supplier_is_a_competitor_loss(note):
    reading = read(note)
    assert reading.outcome == "lost"
    assert "competitor" in reading.reasons


@pytest.mark.parametrize(("note", "reason"), [
    # a known miss from the model of 2026-12-06 (b1-b28) to the eighth session's first (b1-b61)
    ("Capisco che per voi adesso non è certo una priorità, con la stagione appena partita.", "timing"),
    ("Mi è chiaro che non ne avete davvero bisogno: il vostro gestionale fa già tutto.", "no_need"),
    ("Ho capito che senza il vostro socio non ve la sentite di firmare.", "consult"),
    ("Understood - it's not really the right moment for your team, with the audit under way.", "timing"),
    ("You told me your crew simply doesn't have the bandwidth for a rollout this quarter.", "timing"),
    ("Honestly they cope perfectly well with paper forms; I don't think they need us at all.", "no_need"),
])
def test_second_person_and_hedged_refusals(note, reason):
    reading = read(note)
    assert reading.outcome == "lost"
    assert reason in reading.reasons


@pytest.mark.parametrize("note", [
    "Che bella notizia: il consiglio ha approvato l'acquisto ieri sera. Vi mando il contratto.",
    "Ottimo, il titolare ha dato il via libera definitivo: preparo la conferma d'ordine.",
])
def test_italian_approval_by_the_decision_maker_is_won(note):
    assert read(note).outcome == "won"


# ---- explicit denials ("not X but Y") ---------------------------------------------------------------------------

@pytest.mark.parametrize("note", [
    "Persa. Sono fuori budget con noi, ma non è un problema di soldi: è il prezzo che trovano troppo alto.",
    "Lost. We're out of budget for them, they said - but it's not a budget issue, the price is just too high.",
])
def test_a_denied_reason_is_dropped_even_if_mentioned_elsewhere(note):
    assert read(note).reasons == ["price"]


def test_a_future_approval_is_not_a_denial():
    reading = read("Lost for now: no money left this year, and nothing moves until the new budget is approved in March.")
    assert reading.reasons == ["budget"]


# ---- cause in the rep's own words, with adverbs and clitics in between -----------------------------------------

@pytest.mark.parametrize(("note", "cause"), [
    ("Persa, ma non dipende affatto dalla nostra proposta: sono in liquidazione.", "external"),
    ("Persa. Onestamente non avremmo potuto farci granché, hanno chiuso il reparto.", "external"),
    ("Lost - not a deal anyone could have saved, the plant is closing.", "external"),
    ("Lost to Globex. I own this one: I never followed up after the demo.", "internal"),
    ("Persa, e la responsabilità è tutta mia: ho mandato l'offerta tardi.", "internal"),
])
def test_cause_override_variants(note, cause):
    assert read(note).cause == cause


@pytest.mark.parametrize("note", [
    "Lost. We never really clicked with their ops lead.",
    "Lost to the supplier next door - I never built much of a real relationship with the owner.",
    "Persa: con il direttore non c'è mai stata vera sintonia.",
])
def test_relationship_with_words_in_between(note):
    assert "relationship" in read(note).reasons


@pytest.mark.parametrize("note", [
    pytest.param("Lost: the whole programme was cancelled in a restructuring.",
                 marks=pytest.mark.xfail(strict=True, reason="a known miss with the models of the eighth session "
                                         "(b1-b65): other 0.30 over timing 0.27 (timing 0.347 over other 0.324 with "
                                         "the seventh's)")),
    "Lost. With the merger still settling, it isn't the right moment for anything new.",
])
def test_a_restructuring_or_a_merger_is_timing(note):
    """The understanding issue's definition (and the blind corpus's labels): a merger or a reorganisation is timing
    (this test once expected "other" for the restructuring)."""
    assert read(note).reasons == ["timing"]


@pytest.mark.parametrize("note", [
    "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n",
    # read open by the first outcome stacker (b1-b61); lost (unsure, so held for the rep) once short polite recaps
    # joined train (b62-b65)
    "Ciao Jane,\n\ngrazie per l'incontro di oggi. Ho capito che il budget non c'è fino ad aprile; ci risentiamo "
    "allora.\n\nTom\n",
])
def test_the_briefs_own_polite_recap_is_a_loss(note):
    """The brief's example of a recap that tells the outcome politely: no sale today, whatever comes in April."""
    assert read(note).outcome == "lost"


def test_hiring_freeze_is_not_a_budget_reason():
    reading = read("Lost - with their hiring freeze there's no real need for an onboarding tool.")
    assert reading.reasons == ["no_need"]


# ---- dates: end of the month; a past duration in the perfect ------------------------------------------------------

@pytest.mark.parametrize("note", [
    "I'll give them a ring at the end of the month to see where the review stands.",
    "Li richiamo a fine mese per sapere a che punto sono.",
])
def test_end_of_the_month(note):
    assert read(note).recontact_on == date(2026, 11, 30)


def test_perfect_duration_is_not_a_recontact():
    reading = read("Lost: they have been with their supplier for nine years and won't move.")
    assert reading.recontact_on is None


# ---- decision makers: "your CFO", feminine Italian roles, security officers, accountants, signatures ---------

def test_name_then_your_role():
    reading = read("You'll take the proposal to Olga Berg, your CFO, who signs off on all new vendors.")
    assert DecisionMaker("Olga Berg", "cfo") in reading.decision_makers


@pytest.mark.parametrize(("note", "person"), [
    ("Prima di firmare serve l'ok della direttrice acquisti, Carla Neri.", DecisionMaker("Carla Neri", "procurement")),
    ("Their CISO, Ravi Shah, has to approve any vendor touching customer data.", DecisionMaker("Ravi Shah", "ciso")),
    ("La decisione la prendono insieme al commercialista, dott. Piero Sala.", DecisionMaker("Piero Sala", "accountant")),
])
def test_more_roles(note, person):
    """The rules' role lexicon (the learned judge over their candidates: test_notes_judges.py)."""
    assert person in understand(note, sent_at=SENT, tz=ROME, model=None).decision_makers


def test_sign_off_name_then_signature_block_is_cut():
    note = ("Great news, thanks - the board approved the purchase this morning.\n\nMaya\n\nMaya Lopez\n"
            "Head of Sales, West\nAcme Inc. | 1 Main St\n(555) 010-0000")
    reading = read(note)
    assert reading.outcome == "won"
    assert all(person.role != "sales director" for person in reading.decision_makers)


def test_a_greeting_that_is_also_a_closing_word_does_not_end_the_note():
    note = "ciao,\ncall fatta cn Tipografia Mancini\n- nn se ne fa niente x ora, budget\n- ricontattare a novembre\n\nD."
    reading = understand(note, sent_at=SENT, tz=ROME, model=None)
    assert reading.recontact_on == date(2027, 11, 1)  # read from the note's body, not cut off as a signature
