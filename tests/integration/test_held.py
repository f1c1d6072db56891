"""Customer emails planned from an unsure reading (or by an "always" policy) wait for the rep's one click.

Real Dovecot, Redis, RQ worker and SMTP catcher: a held email is never claimed, the summary says what is held
and why with a "Yes, send them" link, and the link's page (GET changes nothing, POST with CSRF) releases them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service import context
from service.models import Outcome, PolicyRecord
from service.outbox import schedule
from service.planning.policy import Policy
from tests.integration.test_outbox import ingest, rows, work
from tests.mail import recap

LOST = "Hi Jane,\n\nthanks for today. I understand the budget isn't there until next April; let's talk then.\n\nTom\n"


@pytest.fixture
def always_hold(engine):
    with Session(engine) as session:
        session.add(PolicyRecord(values=Policy(confirmation="always").to_dict(), author="test"))
        session.commit()


@pytest.fixture
def held_meeting(imap, settings, engine, reps, redis, smtp, always_hold):
    ingest(imap, settings, engine, recap(1, body=LOST, date=datetime.now(UTC) - timedelta(days=2)))
    return rows(engine)


def _customer_rows(engine):
    return [r for r in rows(engine) if r.customer_id is not None]


def _summary_text(smtp) -> str:
    summary = next(c for c in smtp.caught if c.message["To"].endswith("tom.baker@acme.example>"))
    return summary.message.get_body(preferencelist=("plain",)).get_content()


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_held_customer_emails_are_never_sent_and_the_summary_says_why(held_meeting, engine, redis, smtp):
    customer = [r for r in held_meeting if r.customer_id is not None]
    assert {r.kind for r in customer} == {"thank_you", "recontact"}
    assert {r.status for r in customer} == {"held"}
    with Session(engine) as session:
        outcome = session.exec(select(Outcome)).one()
        assert outcome.held_reason and "policy" in outcome.held_reason
    for row in customer:  # queued to send now by hand: the sender still leaves a held row alone
        schedule.enqueue_send(context.current(), row.id, datetime.now(UTC))
    work(redis)
    sent_to = [c.message["To"] for c in smtp.caught]
    assert not [to for to in sent_to if "jane@globex.example" in to]
    text = _summary_text(smtp)
    assert "WAITING FOR YOU" in text and "2 emails" in text
    assert "/manage/confirm/" in text


def test_yes_send_them_releases_the_held_emails_after_a_post_with_csrf(held_meeting, client, engine, redis, smtp):
    work(redis)
    link = re.search(r"Yes, send them: (\S+)", _summary_text(smtp)).group(1)
    page = client.get(_path(link))
    assert page.status_code == 200 and b"Yes, send them" in page.data
    assert {r.status for r in _customer_rows(engine)} == {"held"}  # a GET (a link scanner) changes nothing
    assert client.post(_path(link), data={}).status_code == 400  # no CSRF token: refused
    assert {r.status for r in _customer_rows(engine)} == {"held"}
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    done = client.post(_path(link), data={"csrf_token": csrf})
    assert b"2 emails scheduled" in done.data
    assert {r.status for r in _customer_rows(engine)} == {"scheduled"}
    with Session(engine) as session:
        assert session.exec(select(Outcome)).one().confirmed_at is not None


def test_a_canceled_held_email_stays_canceled_when_the_rep_confirms(held_meeting, client, settings, engine):
    from service.outbox.status import release_held, suppress

    with Session(engine) as session:
        suppress(session, "jane@globex.example", "asked not to be contacted")  # opt-outs reach held emails too
        session.commit()
    assert {r.status for r in _customer_rows(engine)} == {"canceled"}
    with Session(engine) as session:
        outcome_id = session.exec(select(Outcome)).one().id
        assert release_held(session, outcome_id) == []
        session.commit()
    assert {r.status for r in _customer_rows(engine)} == {"canceled"}


def test_a_tampered_confirm_link_is_refused(client):
    assert client.get("/manage/confirm/garbage").status_code == 400


def test_fix_it_with_the_form_unchanged_keeps_the_held_recontact(held_meeting, settings, engine):
    """"Fix it" opens the debrief prefilled with the plan as it stands, held emails included: saved unchanged,
    it sends what was held and cancels nothing (prefilled from scheduled rows only, it read "no recontact" and
    canceled the recontact)."""
    from service.pipeline.debrief import prefill, save_debrief

    held = {r.kind: r for r in _customer_rows(engine)}
    with Session(engine) as session:
        outcome = session.exec(select(Outcome)).one()
        answers = prefill(session, outcome)
        assert answers.plan == "recontact_on_date"
        save_debrief(session, settings, outcome, answers)
        session.commit()
    after = {r.kind: r for r in _customer_rows(engine)}
    assert {kind: r.status for kind, r in after.items()} == {"thank_you": "scheduled", "recontact": "scheduled"}
    assert after["recontact"].id == held["recontact"].id
    assert after["recontact"].due_at == held["recontact"].due_at
