"""Quote stripping and forward reading: focused cases, then the corpus in tests/corpus/replies/."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from service.intake.quotes import Forward, Person, find_forward, find_reply, strip_quotes

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "replies"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))


def _case_text(case: dict) -> str:
    """The body of a corpus case: inline (CRLF/CR cases keep their line endings in JSON) or from its file."""
    if "text" in case:
        return case["text"]
    return (CORPUS / case["file"]).read_text(encoding="utf-8")


def _person(expected: dict | None) -> Person | None:
    """A Person from the corpus's {"name", "email"} form."""
    return None if expected is None else Person(name=expected["name"], email=expected["email"])


# --- the corpus -----------------------------------------------------------------------------------------------
def test_corpus_is_large_and_covers_both_kinds():
    kinds = [case["kind"] for case in CASES]
    assert len(CASES) >= 60
    assert kinds.count("forward") >= 20 and kinds.count("reply") >= 40
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_corpus_note(case):
    assert strip_quotes(_case_text(case)) == case["expected_note"]


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "reply"],
                         ids=[c["name"] for c in CASES if c["kind"] == "reply"])
def test_corpus_reply_forward_reading(case):
    forward = find_forward(_case_text(case))
    if "block_sender" in case:
        # An Outlook From:/Sent:/To:/Subject: block reads the same in a reply and in a forward.
        assert forward is not None and forward.sender.email == case["block_sender"]
        assert forward.note == case["expected_note"]
    else:
        assert forward is None


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "forward"],
                         ids=[c["name"] for c in CASES if c["kind"] == "forward"])
def test_corpus_forward(case):
    expected = case["forward"]
    forward = find_forward(_case_text(case))
    assert forward is not None
    assert forward.note == case["expected_note"]
    assert forward.sender == _person(expected["sender"])
    assert forward.to == tuple(map(_person, expected["to"]))
    assert forward.cc == tuple(map(_person, expected["cc"]))
    assert (forward.date.isoformat() if forward.date else None) == expected["date"]
    assert forward.subject == expected["subject"]
    for words in expected["body_contains"]:
        assert words in forward.body
    for words in expected["body_excludes"]:
        assert words not in forward.body


# --- reply headers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "On Tue, Mar 3, 2026 at 10:12 AM Maria Rossi <maria@globex.example> wrote:",
        "On 3 Mar 2026, at 10:12, Maria Rossi <maria@globex.example> wrote:",
        "Il giorno mar 3 mar 2026 alle ore 10:12 Maria Rossi <maria@globex.example> ha scritto:",
        "Il 03/03/2026 10:12, Maria Rossi ha scritto:",
        "Am Di., 3. März 2026 um 10:12 Uhr schrieb Maria Rossi <maria@globex.example>:",
        "Am 03.03.2026 um 10:12 schrieb Maria Rossi:",
        "Le mar. 3 mars 2026 à 10:12, Maria Rossi <maria@globex.example> a écrit :",
        "El mar, 3 mar 2026 a las 10:12, Maria Rossi (<maria@globex.example>) escribió:",
        "Op di 3 mrt 2026 om 10:12 schreef Maria Rossi <maria@globex.example>:",
        "Em ter., 3 de mar. de 2026 às 10:12, Maria Rossi <maria@globex.example> escreveu:",
        "W dniu 3.03.2026 o 10:12, Maria Rossi pisze:",
        "wt., 3 mar 2026 o 10:12 Maria Rossi <maria@globex.example> napisał(a):",
        "Den tis 3 mars 2026 kl 10:12 skrev Maria Rossi <maria@globex.example>:",
        "Maria Rossi <maria@globex.example> wrote:",
    ],
)
def test_reply_header_cuts_everything_below(header):
    text = f"Lost, budget.\n\n{header}\nWe have no budget.\nMaria\n"
    assert strip_quotes(text) == "Lost, budget."


def test_reply_header_wrapped_over_two_lines():
    text = "Lost.\n\nOn Tue, Mar 3, 2026 at 10:12 AM Maria Rossi <\nmaria@globex.example> wrote:\n> No.\n"
    assert strip_quotes(text) == "Lost."


def test_reply_header_wrapped_over_three_lines():
    text = "Lost.\n\nOn Tue, Mar 3, 2026 at 10:12 AM,\nMaria Rossi\n<maria@globex.example> wrote:\n> No.\n"
    assert strip_quotes(text) == "Lost."


def test_wrote_in_prose_is_not_a_header():
    text = "Maria wrote:\nthey have no budget."
    assert strip_quotes(text) == text


def test_italian_article_above_header_is_kept():
    text = "Il cliente ha detto no.\nIl 03/03/2026 10:12, Maria Rossi ha scritto:\n> No.\n"
    assert strip_quotes(text) == "Il cliente ha detto no."


def test_interleaved_answers_are_kept():
    text = "On Tue, Mar 3, 2026 at 10:12 AM Maria <m@globex.example> wrote:\n> Reason?\n\nBudget.\n\n> When?\n\nIn May."
    assert strip_quotes(text) == "Budget.\n\nIn May."


def test_quote_run_inside_a_paragraph_leaves_no_gap():
    assert strip_quotes("They said:\n> not now\nso I'll call in May.") == "They said:\nso I'll call in May."


# --- Outlook blocks and delimiters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "block",
    [
        "From: Maria <m@globex.example>\nSent: Tuesday, March 3, 2026 10:12 AM\nTo: Tom\nSubject: RE: Offer",
        "Da: Maria <m@globex.example>\nInviato: martedì 3 marzo 2026 10:12\nA: Tom\nOggetto: R: Offerta",
        "Von: Maria <m@globex.example>\nGesendet: Dienstag, 3. März 2026 10:12\nAn: Tom\nBetreff: AW: Angebot",
        "De : Maria <m@globex.example>\nEnvoyé : mardi 3 mars 2026 10:12\nÀ : Tom\nObjet : RE: Offre",
        "De: Maria <m@globex.example>\nEnviado el: martes, 3 de marzo de 2026 10:12\nPara: Tom\nAsunto: RE: Oferta",
        "Van: Maria <m@globex.example>\nVerzonden: dinsdag 3 maart 2026 10:12\nAan: Tom\nOnderwerp: RE: Offerte",
        "De: Maria <m@globex.example>\nEnviada em: terça-feira, 3 de março de 2026 10:12\nPara: Tom\nAssunto: RE: x",
        "Od: Maria <m@globex.example>\nWysłano: wtorek, 3 marca 2026 10:12\nDo: Tom\nTemat: RE: Oferta",
        "Från: Maria <m@globex.example>\nSkickat: den 3 mars 2026 10:12\nTill: Tom\nÄmne: SV: Offert",
        "________________________________\nFrom: Maria <m@globex.example>\nSent: Tuesday\nTo: Tom\nSubject: RE",
        "-----Original Message-----\nFrom: Maria [mailto:m@globex.example]\nSent: Tuesday\nTo: Tom\nSubject: RE",
        "-----Messaggio originale-----\nDa: Maria\nInviato: martedì\nA: Tom\nOggetto: R: Offerta",
        "-----Ursprüngliche Nachricht-----\nVon: Maria\nGesendet: Dienstag\nAn: Tom\nBetreff: AW: Angebot",
    ],
)
def test_outlook_block_cuts_everything_below(block):
    assert strip_quotes(f"Lost.\n\n{block}\n\nNo budget, sorry.\nMaria") == "Lost."


def test_original_message_row_alone_cuts():
    assert strip_quotes("Lost.\n\n-----Original Message-----\nsomething quoted") == "Lost."


def test_from_line_without_block_is_kept():
    text = "From: our side, all good.\nOutcome: won"
    assert strip_quotes(text) == text


# --- signatures, footers, disclaimers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone", "Sent from my Galaxy", "Inviato da iPhone", "Inviato dal mio dispositivo",
        "Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Enviado desde mi iPhone", "Get Outlook for iOS",
        "Get Outlook for Android", "Sent from Mail for Windows", "Verzonden vanaf mijn iPhone",
        "Enviado do meu iPhone", "Wysłane z mojego iPhone'a", "Skickat från min iPhone", "Sent from Outlook",
    ],
)
def test_mobile_footer_is_removed(footer):
    assert strip_quotes(f"Lost on price.\n\n{footer}\n") == "Lost on price."


def test_inviato_in_prose_is_kept():
    text = "Inviato da Maria il contratto firmato. Vinto!"
    assert strip_quotes(text) == text


def test_dash_dash_signature_is_removed():
    assert strip_quotes("Lost.\n\n-- \nTom Baker\nAcme") == "Lost."


@pytest.mark.parametrize(
    "closing",
    [
        "Best regards,\nAnna Bianchi\nSales Manager | Acme\nTel. +39 02 1234 5678",
        "Cordiali saluti\nAnna Bianchi\nAcme S.p.A.",
        "Un saluto,\nLuca",
        "Grazie e a presto\nLuca Moretti",
        "Cheers\nTom",
        "Thanks,",
        "Thanks, Tom",
        "Mit freundlichen Grüßen\nTom Baker",
        "Cordialement,\nTom",
        "Saludos,\nSarah",
    ],
)
def test_closing_block_is_removed(closing):
    assert strip_quotes(f"Hi Tom,\n\nLost, budget.\n\n{closing}\n") == "Hi Tom,\n\nLost, budget."


def test_closing_followed_by_content_is_kept():
    text = "Lost.\n\nThanks,\nTom\n\nP.S. The CFO Maria Rossi decides in May, after the board meeting."
    assert strip_quotes(text) == text


def test_closing_alone_is_kept():
    assert strip_quotes("Thanks!") == "Thanks!"


def test_outcome_lines_after_name_are_not_a_signature():
    text = "Cheers\nTom\nOutcome: lost\nEsito: perso"
    assert strip_quotes(text) == text


def test_contact_block_without_closing_is_removed():
    assert strip_quotes("Lost.\n\nTom Baker\nAcme | +44 20 7946 0000") == "Lost."


@pytest.mark.parametrize(
    "disclaimer",
    [
        "This email and any attachments are confidential and intended solely for the addressee.",
        "Questo messaggio e i suoi allegati sono confidenziali e destinati esclusivamente al destinatario.",
        "CONFIDENTIALITY NOTICE: the information in this message is privileged.",
        "Diese E-Mail enthält vertrauliche Informationen.",
    ],
)
def test_disclaimer_is_removed(disclaimer):
    assert strip_quotes(f"Lost.\n\n{disclaimer}\nMore legal text.") == "Lost."


# --- text hygiene ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["", "   ", "\n\n", "\r\n\r\n", "> only a quote\n> more"])
def test_empty_result(body):
    assert strip_quotes(body) == ""


def test_line_endings_are_normalised():
    assert strip_quotes("Hi Tom,\r\nlost.\rRecontact in May.\r\n") == "Hi Tom,\nlost.\nRecontact in May."


def test_trailing_whitespace_is_stripped_and_greeting_kept():
    assert strip_quotes("Hi Tom,   \nOutcome: lost \t\n") == "Hi Tom,\nOutcome: lost"


def test_common_indentation_from_html_conversion_is_removed():
    assert strip_quotes("    Lost.\n\n      They will call.\n") == "Lost.\n\n  They will call."


# --- forwards ---------------------------------------------------------------------------------------------------
GMAIL_FORWARD = """Lost, see below.

---------- Forwarded message ---------
From: Maria Rossi <maria@globex.example>
Date: Tue, Mar 3, 2026 at 10:12 AM
Subject: Re: Offer
To: Tom Baker <tom@acme.example>, "Verdi, Marco" <marco@acme.example>
Cc: paolo@globex.example; Gallo, Paolo <p.gallo@globex.example>


Hi Tom, no budget.

Best regards,
Maria
"""


def test_gmail_forward_fields():
    forward = find_forward(GMAIL_FORWARD)
    assert forward == Forward(
        note="Lost, see below.",
        sender=Person("Maria Rossi", "maria@globex.example"),
        to=(Person("Tom Baker", "tom@acme.example"), Person("Marco Verdi", "marco@acme.example")),
        cc=(Person(None, "paolo@globex.example"), Person("Paolo Gallo", "p.gallo@globex.example")),
        date=datetime(2026, 3, 3, 10, 12),
        subject="Re: Offer",
        body="Hi Tom, no budget.",
    )


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "---------- Messaggio inoltrato ---------",
        "---------- Message transféré ---------",
        "---------- Weitergeleitete Nachricht ---------",
        "---------- Mensaje reenviado ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "Inizio messaggio inoltrato:",
    ],
)
def test_forward_markers(marker):
    text = f"Note.\n\n{marker}\n\nFrom: Maria <maria@globex.example>\nSubject: Offer\nTo: tom@acme.example\n\nNo."
    forward = find_forward(text)
    assert forward is not None
    assert (forward.note, forward.sender.email, forward.subject, forward.body) == (
        "Note.", "maria@globex.example", "Offer", "No.")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Maria Rossi <maria@x.example>", Person("Maria Rossi", "maria@x.example")),
        ("maria@x.example", Person(None, "maria@x.example")),
        ("Rossi, Maria <maria@x.example>", Person("Maria Rossi", "maria@x.example")),
        ('"Maria Rossi" <mailto:maria@x.example>', Person("Maria Rossi", "maria@x.example")),
        ("Maria Rossi [mailto:Maria@X.example]", Person("Maria Rossi", "maria@x.example")),
        ("'Maria Rossi' <maria@x.example>", Person("Maria Rossi", "maria@x.example")),
        ("maria@x.example <maria@x.example>", Person(None, "maria@x.example")),
        ("Globex, Inc. <info@x.example>", Person("Globex, Inc.", "info@x.example")),
    ],
)
def test_sender_forms(value, expected):
    text = f"---------- Forwarded message ---------\nFrom: {value}\nDate: x\nTo: t@acme.example\n\nBody"
    assert find_forward(text).sender == expected


def test_name_only_sender_is_none():
    text = "---------- Forwarded message ---------\nFrom: Maria Rossi\nSubject: x\nTo: t@acme.example\n\nBody"
    assert find_forward(text).sender is None


CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Tue, Mar 3, 2026 at 10:12 AM", datetime(2026, 3, 3, 10, 12)),
        ("Tue, Mar 3, 2026 at 1:05 PM", datetime(2026, 3, 3, 13, 5)),
        ("Tuesday, March 3, 2026 10:12 AM", datetime(2026, 3, 3, 10, 12)),
        ("martedì 3 marzo 2026 10:12", datetime(2026, 3, 3, 10, 12)),
        ("mar 3 mar 2026 alle ore 10:12", datetime(2026, 3, 3, 10, 12)),
        ("Dienstag, 3. März 2026 10:12", datetime(2026, 3, 3, 10, 12)),
        ("mardi 3 mars 2026 10:12", datetime(2026, 3, 3, 10, 12)),
        ("martes, 3 de marzo de 2026 10:12", datetime(2026, 3, 3, 10, 12)),
        ("Tue, 3 Mar 2026 10:12:00 +0100", datetime(2026, 3, 3, 10, 12, tzinfo=CET)),
        ("3 March 2026 at 10:12:00 CET", datetime(2026, 3, 3, 10, 12, tzinfo=CET)),
        ("Tuesday, March 3, 2026, 10:12:00 AM GMT+1", datetime(2026, 3, 3, 10, 12, tzinfo=CET)),
        ("03/03/2026 10:12", datetime(2026, 3, 3, 10, 12)),
        ("12/25/2026 09:00", datetime(2026, 12, 25, 9, 0)),
        ("2026-03-03 10:12", datetime(2026, 3, 3, 10, 12)),
        ("31 February 2026", None),
        ("yesterday", None),
    ],
)
def test_forward_dates(value, expected):
    text = f"---------- Forwarded message ---------\nFrom: m@x.example\nDate: {value}\nTo: t@acme.example\n\nBody"
    assert find_forward(text).date == expected


def test_reply_header_is_not_a_forward():
    text = "Lost.\n\nOn Tue, Mar 3, 2026 at 10:12 AM Maria <m@globex.example> wrote:\n> No.\n"
    assert find_forward(text) is None


def test_forward_in_quoted_history_is_not_a_forward():
    text = ("Lost.\n\nOn Tue, Mar 3, 2026 at 10:12 AM Maria <m@globex.example> wrote:\n"
            "> ---------- Forwarded message ---------\n> From: x@globex.example\n")
    assert find_forward(text) is None


def test_plain_note_has_no_forward():
    assert find_forward("Lost, budget. Recontact in May.") is None
    assert find_forward("") is None


def test_forward_of_a_forward_returns_the_outer_one():
    inner = GMAIL_FORWARD.replace("Lost, see below.", "Tom, yours.")
    text = f"Mine now.\n\n---------- Forwarded message ---------\nFrom: marco@acme.example\nSubject: Fwd\n\n{inner}"
    forward = find_forward(text)
    assert forward.sender.email == "marco@acme.example"
    assert forward.body == "Tom, yours."


# --- pathological input (speed is measured in bench/quotes.py, not asserted here) ---------------------------------
PATHOLOGICAL = {
    "quoted-lines": "> quoted line that goes on a while\n" * 60_000,
    "single-line": "x" * 2_000_000,
    "on-wrote-line": "On " + "1 " * 1_000_000 + "wrote:",
    "colons": "a:" * 1_000_000,
    "prose": ("word " * 20 + "\n") * 20_000,
    "from-lines": "".join(f"From: a{i}@b.example\n" for i in range(100_000)),  # every line a header candidate
    "header-lines": "As she wrote:\n" * 150_000,  # every line a reply-header candidate
    "reply-headers": "On 1 Mar 2026, a@b.example wrote:\n> x\n" * 50_000,  # a quoted message after each
    "quoted-headers": "> On 1 Mar 2026, a@b.example wrote:\n" * 100_000,
}


@pytest.mark.timeout(120)  # a hang guard against catastrophic backtracking, not a speed target
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_huge_pathological_bodies_are_read_to_the_end(name):
    body = PATHOLOGICAL[name]
    note = strip_quotes(body)
    assert isinstance(note, str) and len(note) <= len(body)
    find_forward(body)
    find_reply(body)


# --- the message a reply quotes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    # Gmail: the header above the quoted lines
    "Thanks Imran, understood.\n\nSanjay\n\nOn Mon, 26 Oct 2026 at 17:48, Imran Hussain <I.Hussain@quay.example> "
    "wrote:\n\n> Sanjay, I'm sorry - the board has frozen all spend.\n> Imran\n",
    # Apple Mail: the header quoted with the message
    "Thanks Imran, understood.\n\nSanjay\n\n> On 26 Oct 2026, at 17:48, Imran Hussain <i.hussain@quay.example> "
    "wrote:\n> \n> Sanjay, I'm sorry - the board has frozen all spend.\n> Imran\n",
    # Italian Gmail, the address wrapped onto the next line
    "Grazie Imran.\n\nIl giorno lun 26 ott 2026 alle ore 17:48 Imran Hussain <\ni.hussain@quay.example> ha scritto:\n"
    "\n> Sanjay, I'm sorry - the board has frozen all spend.\n> Imran\n",
])
def test_a_reply_gives_the_message_it_quotes_and_its_author(body):
    reply = find_reply(body)
    assert reply is not None and reply.sender == Person(None, "i.hussain@quay.example")
    assert reply.body.startswith("Sanjay, I'm sorry - the board has frozen all spend.")
    assert find_forward(body) is None  # a reply is not a forward: the rep's note is still the text above


def test_a_quoted_reply_keeps_its_own_words_not_the_history_it_quotes():
    body = ("Noted.\n\nOn Tue, 3 Mar 2026 at 10:00, Ann <ann@x.example> wrote:\n> We chose another vendor.\n>\n"
            ">> On Mon, 2 Mar 2026 at 09:00, Bob <bob@acme.example> wrote:\n>> Any news on our offer?\n")
    reply = find_reply(body)
    assert reply.sender.email == "ann@x.example" and reply.body == "We chose another vendor."


@pytest.mark.parametrize("body", [
    "Just a note.\n> a quoted line without any header\nmore words",
    "Lost for now, budget.\nAs Ann wrote:\n> not this year\n",  # no date or address: not a reply header
    "Plain note, nothing quoted.",
    "On Mon, 2 Mar 2026, Bob wrote:\n> no address in the header\n",
])
def test_no_quoted_message_without_a_reply_header_naming_an_address(body):
    assert find_reply(body) is None


def test_a_reply_headers_address_is_the_bracketed_one_and_an_empty_quote_is_passed_over():
    body = "Noted.\n\nOn Mon, 2 Mar 2026, imran@cust.example <rita@acme.example> wrote:\n> my own words\n"
    assert find_reply(body).sender.email == "rita@acme.example"
    body = ("Noted.\nOn Mon, 2 Mar 2026, A <a@x.example> wrote:\n>\n\nmore\n"
            "On Tue, 3 Mar 2026, B <b@y.example> wrote:\n> the real words\n")
    reply = find_reply(body)
    assert reply.sender.email == "b@y.example" and reply.body == "the real words"
