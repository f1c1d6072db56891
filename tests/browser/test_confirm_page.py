"""The rep's "Yes, send them" page in a real Chromium at phone size: held emails go out after one click."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from service.models import Customer, OutboundEmail, Outcome, Rep
from service.outbox.rows import new_outbound
from service.outbox.template_context import confirm_url
from service.tokens import Signer
from tests.browser.conftest import screenshot


def _held_outcome(engine, settings) -> tuple[Outcome, Rep]:
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        outcome = Outcome(rep_id=rep.id, outcome="lost", cause="external", reasons=["budget"],
                          meeting_at=datetime.now(UTC), held_reason="not sure of the outcome")
        customer = Customer(email="jane@globex.example", name="Jane")
        session.add_all([outcome, customer])
        session.flush()
        for kind in ("thank_you", "recontact"):
            row = new_outbound(settings, kind=kind, rep=rep, to_address=customer.email, to_name="Jane",
                               due_at=datetime.now(UTC) + timedelta(days=1), outcome_id=outcome.id, language="en",
                               customer_id=customer.id)
            row.status = "held"
            session.add(row)
        session.commit()
        session.refresh(outcome)
        session.refresh(rep)
        return outcome, rep


def test_a_rep_confirms_the_held_emails_from_a_phone(live, phone, engine):
    outcome, rep = _held_outcome(engine, live)
    phone.goto(confirm_url(Signer(live), outcome, rep))
    assert phone.get_by_role("heading").inner_text() == "Emails waiting for your confirmation"
    phone.get_by_text("Why they wait: not sure of the outcome").wait_for()
    screenshot(phone, "confirm-held")
    phone.get_by_role("button", name="Yes, send them").click()
    phone.get_by_text("Done: 2 emails scheduled").wait_for()
    screenshot(phone, "confirm-done")
    with Session(engine) as session:
        rows = session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == outcome.id)).all()
        assert {row.status for row in rows} == {"scheduled"}
