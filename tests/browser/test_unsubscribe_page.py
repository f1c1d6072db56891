"""The customer's unsubscribe page in a real Chromium at phone size."""

from __future__ import annotations

from sqlmodel import Session, select

from service.models import Suppression
from service.outbox.template_context import unsubscribe_url
from service.tokens import Signer
from tests.browser.conftest import screenshot


def test_a_customer_unsubscribes_from_a_phone(live, phone, engine):
    phone.goto(unsubscribe_url(Signer(live), "jane@globex.example"))
    assert phone.get_by_role("heading").inner_text() == "Unsubscribe"
    screenshot(phone, "unsubscribe-confirm")
    phone.get_by_role("button", name="Yes, unsubscribe me").click()
    phone.get_by_text("You are unsubscribed").wait_for()
    screenshot(phone, "unsubscribe-done")
    with Session(engine) as session:
        assert session.exec(select(Suppression).where(Suppression.email == "jane@globex.example")).one()
