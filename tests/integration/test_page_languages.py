"""Pages in their reader's language over HTTP: the rep's manage and debrief pages in the language of the summary,
the unsubscribe page in the language of the customer's email (an old link without one: the browser's), the admin's
pages in the browser's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlmodel import Session, select

from service.context import Services
from service.intake.store import store_raw
from service.models import Customer, OutboundEmail, Outcome, Rep
from service.outbox.rows import new_outbound
from service.outbox.template_context import confirm_url, debrief_url, manage_urls, unsubscribe_url
from service.pipeline.process import process_message
from service.tokens import Signer
from tests.mail import recap

ITALIAN = {"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.8"}
NOTE = ("Ciao Giulia,\n\ngrazie per il tempo che mi hai dedicato oggi. Purtroppo la nostra demo non ti ha "
        "convinta, e questo dipende da me.\n\nAnna\n")


def _path(url: str) -> str:
    return url.removeprefix("http://keepwarm.test")


def _lang(page) -> str:
    return re.search(rb'<html lang="([^"]+)"', page.data).group(1).decode()


def _text(page) -> str:
    """The page's HTML with entities decoded (Jinja escapes an apostrophe in a value, not in a template's text)."""
    return unescape(page.data.decode())


def _csrf(page) -> str:
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()


@pytest.fixture
def italian_meeting(engine, settings) -> tuple[int, int, int]:
    """Anna's Italian meeting: one scheduled recontact and one held thank-you. (outcome, scheduled, held) ids."""
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "anna.bianchi@acme.example")).one()
        outcome = Outcome(rep_id=rep.id, outcome="lost", cause="external", reasons=["budget"], language="it",
                          meeting_at=datetime.now(UTC), held_reason="not sure of the outcome")
        customer = Customer(email="giulia@ferri.example", name="Giulia Ferri")
        session.add_all([outcome, customer])
        session.flush()
        rows = [new_outbound(settings, kind=kind, rep=rep, to_address=customer.email, to_name="Giulia Ferri",
                             due_at=datetime.now(UTC) + timedelta(days=days), outcome_id=outcome.id,
                             language="it", customer_id=customer.id) for kind, days in (("recontact", 30),
                                                                                          ("thank_you", 1))]
        rows[1].status = "held"
        session.add_all(rows)
        session.commit()
        return outcome.id, rows[0].id, rows[1].id


def _rep_links(settings, engine, outcome_id: int, outbound_id: int) -> dict:
    with Session(engine) as session:
        outcome = session.get(Outcome, outcome_id)
        rep = session.get(Rep, outcome.rep_id)
        return {**manage_urls(Signer(settings), outbound_id, rep.id), "confirm": confirm_url(Signer(settings),
                                                                                           outcome, rep)}


def test_the_manage_pages_speak_the_summary_s_italian_whatever_the_browser(client, settings, engine,
                                                                           italian_meeting):
    outcome_id, scheduled, _held = italian_meeting
    links = _rep_links(settings, engine, outcome_id, scheduled)
    postpone = client.get(_path(links["postpone"]), headers=ENGLISH)
    assert _lang(postpone) == "it" and "Rimanda un'email" in _text(postpone)
    assert "Rimanda di (giorni)" in _text(postpone)

    cancel = client.get(_path(links["cancel"]), headers=ENGLISH)
    text = _text(cancel)
    assert _lang(cancel) == "it" and "Annulla questa email" in text and "Ricontatto a Giulia Ferri" in text
    assert "Stato: <strong>programmata</strong>" in text
    done = client.post(_path(links["cancel"]), data={"csrf_token": _csrf(cancel)}, headers=ENGLISH)
    assert "Stato: <strong>annullata</strong> (annullata da te)" in _text(done)


def test_the_postpone_form_s_own_errors_are_italian(client, settings, engine, italian_meeting):
    outcome_id, scheduled, _held = italian_meeting
    url = _path(_rep_links(settings, engine, outcome_id, scheduled)["postpone"])
    page = client.get(url)
    refused = client.post(url, data={"csrf_token": _csrf(page), "days": "999"}, headers=ENGLISH)
    errors = re.findall(r'<p class="error">([^<]+)</p>', _text(refused))
    assert errors and not any("must be" in e for e in errors), errors  # WTForms' own Italian catalog


def test_the_confirm_page_speaks_italian_and_confirms(client, settings, engine, italian_meeting):
    outcome_id, scheduled, _held = italian_meeting
    url = _path(_rep_links(settings, engine, outcome_id, scheduled)["confirm"])
    page = client.get(url, headers=ENGLISH)
    text = _text(page)
    assert _lang(page) == "it" and "Email in attesa della tua conferma" in text
    assert "Perché sono in attesa: non sono sicuro dell'esito." in text
    assert "Ringraziamento a Giulia Ferri" in text and "Sì, inviale" in text
    done = client.post(url, data={"csrf_token": _csrf(page)})
    assert "Fatto: 1 email programmata." in _text(done)


def test_a_broken_rep_link_speaks_the_browser_s_language(client):
    italian = client.get("/manage/cancel/garbage", headers=ITALIAN)
    assert italian.status_code == 400 and _lang(italian) == "it" and b"Link non valido" in italian.data
    english = client.get("/manage/cancel/garbage", headers=ENGLISH)
    assert _lang(english) == "en" and b"Link not valid" in english.data
    debrief = client.get("/debrief/garbage", headers=ITALIAN)
    assert debrief.status_code == 400 and "Questo link non è valido" in _text(debrief)


def test_the_admin_pages_follow_accept_language(client):
    assert _lang(client.get("/admin/login", headers=ITALIAN)) == "it"
    assert _lang(client.get("/admin/login", headers=ENGLISH)) == "en"
    assert _lang(client.get("/admin/login", headers={"Accept-Language": "de-DE,fr;q=0.8"})) == "en"
    assert _lang(client.get("/admin/login")) == "en"


def test_the_unsubscribe_page_speaks_the_language_of_the_email(client, settings):
    url = _path(unsubscribe_url(Signer(settings), "giulia@ferri.example", "it"))
    page = client.get(url, headers=ENGLISH)
    assert _lang(page) == "it" and "Desidera interrompere tutte le email" in _text(page)
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})  # a mail provider: no Accept-Language
    assert _lang(done) == "it" and "La Sua iscrizione è stata annullata" in _text(done)


def test_an_old_unsubscribe_link_without_a_language_still_works_in_the_browser_s(client, settings):
    old = _path(Signer(settings).url("/unsubscribe", Signer(settings).make("unsubscribe",
                                                                           {"email": "jane@globex.example"})))
    english = client.get(old)
    assert english.status_code == 200 and _lang(english) == "en" and b"Yes, unsubscribe me" in english.data
    italian = client.get(old, headers=ITALIAN)
    assert _lang(italian) == "it" and "Sì, desidero annullare l'iscrizione" in _text(italian)
    assert client.post(old, headers=ITALIAN).status_code == 200


@pytest.fixture
def italian_outcome(engine, settings) -> Outcome:
    """Anna's Italian recap, read for real."""
    with Session(engine) as session:
        row = store_raw(session, recap(1, sender="Anna Bianchi <anna.bianchi@acme.example>",
                                       to="Giulia Ferri <giulia@ferri.example>", body=NOTE,
                                       date=datetime.now(UTC) - timedelta(hours=1)), mailbox="t")
        session.commit()
        inbound_id = row.id
    process_message(Services.with_engine(settings, engine), inbound_id)
    with Session(engine) as session:
        return session.exec(select(Outcome)).one()


def test_the_debrief_s_own_messages_speak_the_rep_s_italian(client, settings, engine, italian_outcome):
    assert italian_outcome.language == "it"
    with Session(engine) as session:
        url = _path(debrief_url(Signer(settings), italian_outcome, session.get(Rep, italian_outcome.rep_id)))
    page = client.get(url, headers=ENGLISH)
    assert _lang(page) == "it" and "Com'è andata a finire?" in _text(page)
    refused = client.post(url, data={"csrf_token": _csrf(page), "outcome": "lost", "plan": "recontact_on_date",
                                     "recontact_on": ""}, headers=ENGLISH)
    assert refused.status_code == 422 and "Scegli la data del ricontatto." in _text(refused)
    expired_form = client.post(url, data={"outcome": "lost", "plan": "no_recontact"}, headers=ENGLISH)
    assert expired_form.status_code == 400 and "Le tue risposte non sono state salvate" in _text(expired_form)
    with Session(engine) as session:  # the summary the rep came from was written in Italian too
        assert session.exec(select(OutboundEmail).where(OutboundEmail.kind == "rep_summary")).one().language == "it"
