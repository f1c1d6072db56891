"""An Italian rep and an Italian customer in a real Chromium: the debrief form reached from the Italian summary the
worker really sent, the unsubscribe page from the Italian email the customer really received. Chromium asks for
English (its Accept-Language): the pages speak Italian because the emails did."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service import context
from service.models import OutboundEmail, Outcome, Suppression
from service.outbox.actions import send_now
from service.pipeline.polling import poller
from tests.browser.conftest import _page_at, screenshot
from tests.browser.test_debrief_page import work
from tests.mail import recap

REP = "Anna Bianchi <anna.bianchi@acme.example>"
CUSTOMER = "giulia.ferri@ferri-arredi.example"
NOTE = ("Ciao Giulia,\n\ngrazie per il tempo che mi hai dedicato oggi. Purtroppo la nostra demo non ti ha "
        "convinta, e questo dipende da me: non ho capito bene le vostre esigenze.\n\nUn caro saluto,\nAnna\n")
pytestmark = pytest.mark.browser


@pytest.fixture
def laptop(browser):
    """A page at a laptop's size (1280×800)."""
    yield from _page_at(browser, 1280, 800)


def _link(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"(http://127\.0\.0\.1:\d+/{path}/\S+)", text).group(1)


@pytest.fixture
def italian_mail(live, imap, engine, redis, smtp) -> dict:
    """Anna's Italian recap APPENDed and polled; the worker sends her summary, then (sent now by hand) the
    customer's thank-you. The links, from the emails' text parts."""
    imap.append("INBOX", recap(1, sender=REP, to=f"Giulia Ferri <{CUSTOMER}>", body=NOTE,
                               subject="La demo di oggi", date=datetime.now(UTC) - timedelta(hours=1)))
    poller(live, engine).poll_once()
    work(redis)
    with Session(engine) as session:
        assert session.exec(select(Outcome)).one().language == "it"
        thank_you = session.exec(select(OutboundEmail).where(OutboundEmail.kind == "thank_you")).one()
    send_now(context.current(), thank_you.id)
    work(redis)
    [summary] = [c.message for c in smtp.caught if c.recipients == ["anna.bianchi@acme.example"]]
    [customer] = [c.message for c in smtp.caught if c.recipients == [CUSTOMER]]
    return {"debrief": _link(summary, "debrief"), "unsubscribe": _link(customer, "unsubscribe")}


def test_an_italian_rep_debriefs_in_italian(italian_mail, phone, laptop):
    for page, size in ((laptop, "desktop"), (phone, "phone")):
        page.goto(italian_mail["debrief"])
        assert page.locator("html").get_attribute("lang") == "it"
        assert page.get_by_role("heading", level=1).inner_text() == "Giulia Ferri"
        page.get_by_text("Debrief · circa 2 minuti").wait_for()
        assert page.get_by_label("La nostra proposta non ha convinto").is_checked()  # prefilled from the note
        assert page.get_by_role("button", name="Salva il debrief").is_visible()
        screenshot(page, f"debrief-form-it-{size}")

    phone.get_by_label("Nome della persona 1").fill("Marco Ferri")
    phone.get_by_label("Ruolo della persona 1").fill("Titolare")
    phone.get_by_label("Cosa faresti diversamente la prossima volta?").fill("Chiedere prima i numeri.")
    phone.get_by_label("Restare in contatto, senza data").check()
    phone.locator("#preview").get_by_text("Anteprima dell'email").wait_for()
    phone.get_by_role("button", name="Salva il debrief").click()
    phone.get_by_text("Grazie, il tuo debrief è salvato").wait_for()
    assert "Restare in contatto, senza data" in phone.locator(".kw-answers").inner_text()
    screenshot(phone, "debrief-saved-it-phone")


def test_an_italian_customer_unsubscribes_in_italian(italian_mail, phone, laptop, engine):
    laptop.goto(italian_mail["unsubscribe"])
    assert laptop.locator("html").get_attribute("lang") == "it"
    assert laptop.get_by_role("heading").inner_text() == "Annullamento dell'iscrizione"
    screenshot(laptop, "unsubscribe-it-desktop")

    phone.goto(italian_mail["unsubscribe"])
    assert "Desidera interrompere tutte le email" in phone.locator("main").inner_text()
    screenshot(phone, "unsubscribe-it-phone")
    phone.get_by_role("button", name="Sì, desidero annullare l'iscrizione").click()
    phone.get_by_text("La Sua iscrizione è stata annullata").wait_for()
    assert phone.locator("html").get_attribute("lang") == "it"
    screenshot(phone, "unsubscribe-done-it-phone")
    with Session(engine) as session:
        assert session.exec(select(Suppression).where(Suppression.email == CUSTOMER)).one()
