"""The rep's debrief in a real Chromium at phone size, opened from the summary email the worker really sent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job
from sqlmodel import Session, select

from service import context
from service.models import Debrief, OutboundEmail
from service.outbox.schedule import job_id
from service.pipeline.polling import poller
from service.run.worker import BoundedWorker
from tests.browser.conftest import screenshot
from tests.mail import recap

NOTE = ("Hi Jane,\n\nthanks for your time today. I'm afraid our demo did not convince you, and that's on me.\n\n"
        "Tom\n")
pytestmark = pytest.mark.browser


def work(redis) -> None:
    """Run every job that is due now, in this process (the scheduler moves due jobs first)."""
    services = context.current()
    BoundedWorker([services.queue(q) for q in context.QUEUES], connection=redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING")


def outbox(engine) -> list[OutboundEmail]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundEmail).order_by(OutboundEmail.id)))


def next_weekday(day: date) -> date:
    return day + timedelta(days=max(0, 7 - day.weekday()) if day.weekday() >= 5 else 0)


@pytest.fixture
def debrief_link(live, imap, engine, redis, smtp) -> str:
    """The full path: a lost recap APPENDed and polled, the worker sends the summary; its link, from the text part."""
    imap.append("INBOX", recap(1, body=NOTE, subject="Our demo today", date=datetime.now(UTC) - timedelta(hours=1)))
    poller(live, engine).poll_once()
    work(redis)
    [summary] = [c.message for c in smtp.caught if c.recipients == ["tom.baker@acme.example"]]
    text = summary.get_body(("plain",)).get_content()
    return re.search(r"(http://127\.0\.0\.1:\d+/debrief/\S+)", text).group(1)


def test_a_rep_debriefs_on_a_phone_and_the_outbox_follows(debrief_link, phone, engine, redis):
    assert {(r.kind, r.status) for r in outbox(engine)} == {
        ("rep_summary", "sent"), ("thank_you", "scheduled"), ("debrief_reminder", "scheduled")}
    phone.goto(debrief_link)
    assert phone.get_by_role("heading", level=1).inner_text() == "Jane"
    assert phone.get_by_label("Our pitch was not convincing").is_checked()  # prefilled from the note
    assert phone.get_by_label("No recontact").is_checked()
    screenshot(phone, "debrief-form-empty")

    phone.get_by_label("We misunderstood their needs").focus()
    phone.keyboard.press("Space")  # keyboard-usable: boxes toggle with the space bar
    phone.get_by_label("Name of person 1").fill("Maria Rossi")
    phone.get_by_label("Role of person 1").fill("CFO")
    phone.get_by_label("What would you do differently next time?").fill(
        "Ask about their numbers before the demo, and bring a case from their sector.")
    phone.get_by_label("Recontact on a date").check()
    day = next_weekday(date.today() + timedelta(days=45))
    phone.get_by_label("Date", exact=True).fill(day.isoformat())
    phone.get_by_label("A personal line in the email (optional)").fill(
        "I have put together a short case from a shop like yours.")
    preview = phone.locator("#preview")
    preview.get_by_text("a short case from a shop like yours").wait_for()
    assert "Dear Jane" in preview.inner_text()
    screenshot(phone, "debrief-form-filled-preview")

    phone.get_by_role("button", name="Save debrief").click()
    phone.get_by_text("your debrief is saved").wait_for()
    assert "We misunderstood their needs" in phone.locator(".kw-answers").inner_text()
    screenshot(phone, "debrief-after-submit")

    recontact = next(r for r in outbox(engine) if r.kind == "recontact")
    assert recontact.status == "scheduled" and recontact.personal_line.startswith("I have put together")
    assert recontact.due_at.astimezone(ZoneInfo("Europe/London")).date() == day
    assert Job.fetch(job_id(recontact.id), connection=redis).get_status() == "scheduled"
    reminder = next(r for r in outbox(engine) if r.kind == "debrief_reminder")
    assert (reminder.status, reminder.canceled_reason) == ("canceled", "debrief submitted")
    with Session(engine) as session:
        assert session.exec(select(Debrief)).one().answers["ours"] == ["unconvinced", "needs"]

    phone.get_by_role("link", name="Change your answers").click()
    phone.get_by_label("No recontact").check()
    phone.get_by_role("button", name="Save debrief").click()
    phone.get_by_text("your debrief is saved").wait_for()
    assert next(r for r in outbox(engine) if r.kind == "recontact").status == "canceled"
    assert "canceled" in phone.locator(".kw-rows").inner_text()


def test_a_broken_link_shows_what_to_do_not_a_stack_trace(live, phone):
    response = phone.goto(f"{live.base_url}/debrief/not-a-real-link")
    assert response.status == 400
    assert phone.get_by_role("heading", level=1).inner_text() == "This link is not valid"
    assert "summary email" in phone.locator("main").inner_text()
    screenshot(phone, "debrief-link-invalid")
