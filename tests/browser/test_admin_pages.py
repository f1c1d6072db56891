"""The admin pages in Debian's Chromium: log in, edit a template while the preview follows, save, break it, diff,
revert, send a test; then every page at desktop and phone width, with a screenshot each (tests/artifacts/)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from service import context
from service.context import Services
from service.models import InboundMessage
from service.outbox.status import suppress
from service.pipeline.process import ingest_files
from service.run.worker import BoundedWorker
from service.team.admins import create_admin
from tests.browser.conftest import screenshot
from tests.mail import recap

pytestmark = pytest.mark.browser
ADMIN, PASSWORD = "ada@acme.example", "correct horse battery"
EDITOR = "/admin/templates/thank_you/lost/en"
PAGES = [("templates", "/admin/templates/", "Email templates"), ("settings", "/admin/settings", "Settings"),
         ("reps", "/admin/reps", "Reps"), ("suppression", "/admin/suppression", "Suppression list"),
         ("inbox", "/admin/inbox", "Inbox"), ("outbox", "/admin/outbox", "Outbox"),
         ("audit", "/admin/audit", "Audit log"), ("queues", "/admin/queues", "Queue health"),
         ("admins", "/admin/admins", "Admins"), ("insights", "/admin/insights/", "What we learn from lost sales")]


@pytest.fixture
def seeded(live, engine, redis, smtp, tmp_path):
    """An admin, a few recaps read (so the outbox has emails), a stranger's mail, a quarantined one, opt-outs."""
    create_admin(engine, ADMIN, PASSWORD)
    bodies = {1: None, 2: "Hi Jane,\n\nthanks for today. You need to check with your CFO Maria Rossi before "
                          "deciding; let's talk again in March.\n\nTom\n"}
    paths = []
    for n, sender in ((1, "Tom Baker <tom.baker@acme.example>"), (2, "Tom Baker <tom.baker@acme.example>"),
                      (3, "Eve <eve@elsewhere.example>")):
        path = tmp_path / f"{n}.eml"
        path.write_bytes(recap(n, sender=sender, body=bodies.get(n), to=f"Jane <jane{n}@globex.example>"))
        paths.append(path)
    ingest_files(Services.with_engine(live, engine), paths)
    with Session(engine) as session:
        raw = recap(4, subject="Unreadable <b>mail</b>")
        session.add(InboundMessage(mailbox="INBOX", message_id="<recap-4@mail.acme.example>", raw=raw,
                                   size=len(raw), status="quarantined", reason="failed 3 times: ValueError: bad"))
        suppress(session, "old.customer@initech.example", "unsubscribed (link)")
        suppress(session, "complaint@hooli.example", "spam complaint (feedback report)")
        session.commit()
    maintenance = context.current().queue("maintenance")
    maintenance.enqueue(broken_job, 7)
    BoundedWorker([maintenance], connection=redis).work(burst=True)
    return live


def broken_job(number: int) -> None:
    """A job that fails, so the queue page has a failure to show."""
    raise RuntimeError(f"SMTP relay refused the connection (attempt {number})")


def _log_in(page, base: str, shot: str | None = None) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_an_admin_edits_a_template_with_a_live_preview(seeded, desktop, smtp):
    base, page = seeded.base_url, desktop
    _log_in(page, base, shot="admin-login")
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Templates").click()
    page.get_by_role("heading", name="Email templates").wait_for()
    screenshot(page, "admin-templates")
    page.goto(f"{base}{EDITOR}")
    preview = page.locator("#preview")
    preview.get_by_text("Thank you for meeting me", exact=False).first.wait_for()
    page.frame_locator("#preview iframe").get_by_text("My door stays open", exact=False).wait_for()

    page.get_by_label("Text part").fill("Dear {{ customer.first_name }},\n\nWarm regards from the browser test.\n")
    preview.get_by_text("Warm regards from the browser test.").wait_for()
    screenshot(page, "admin-template-editor")
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text("Version 1 saved and active.").wait_for()

    page.get_by_label("Text part").fill("Dear {{ customer.first_name }},\n\n{% if %}\n")
    preview.get_by_text("line 3", exact=False).wait_for()
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text("Version 2 was saved but is not active", exact=False).wait_for()
    assert "line 3" in page.locator(".problems").first.inner_text()
    screenshot(page, "admin-template-error")

    page.goto(f"{base}{EDITOR}/diff?a=0&b=1")
    page.get_by_role("heading", name="Changes from v0 to v1").wait_for()
    screenshot(page, "admin-template-diff")

    page.goto(f"{base}{EDITOR}")
    page.get_by_role("button", name="Restore version 0").click()
    page.get_by_text("Version 0 restored as version 3.").wait_for()
    preview.get_by_text("Thank you for meeting me", exact=False).first.wait_for()

    page.get_by_role("button", name="Send a test to me").click()
    page.get_by_text(f"A test email was sent to {ADMIN}.").wait_for()
    test = smtp.caught[-1]
    assert test.recipients == [ADMIN] and test.message["Subject"].startswith("[Keepwarm test]")
    assert "Thank you for meeting me" in test.message.get_body(("plain",)).get_content()


def test_every_admin_page_at_desktop_width(seeded, desktop):
    base, page = seeded.base_url, desktop
    _log_in(page, base)
    screenshot(page, "admin-home")
    for name, path, heading in PAGES:
        page.goto(f"{base}{path}")
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        screenshot(page, f"admin-{name}")
    page.goto(f"{base}/admin/inbox?status=quarantined")
    page.get_by_role("link", name="<recap-4@mail.acme.example>").click()
    page.get_by_role("heading", name="Raw source").wait_for()
    assert "<b>mail</b>" in page.locator("pre.raw").inner_text()  # shown as text, not markup
    screenshot(page, "admin-inbox-message")
    page.goto(f"{base}/admin/outbox")
    page.get_by_role("link", name="View").first.click()
    page.get_by_role("heading", name="As it will be rendered").wait_for()
    page.locator(".preview iframe").scroll_into_view_if_needed()
    screenshot(page, "admin-outbox-email")


def test_every_admin_page_at_phone_width(seeded, phone):
    base, page = seeded.base_url, phone
    _log_in(page, base, shot="admin-login-phone")
    for name, path, _heading in [("editor", EDITOR, ""), *PAGES]:
        page.goto(f"{base}{path}")
        page.get_by_role("heading", level=1).first.wait_for()
        if name == "editor":
            page.frame_locator("#preview iframe").get_by_text("My door stays open", exact=False).wait_for()
            page.locator("#preview iframe").scroll_into_view_if_needed()  # Chromium skips painting far-off frames
        # Nothing may stick out sideways: the page scrolls down, never across (tables scroll inside their box).
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide"
        screenshot(page, f"admin-{name}-phone")


def test_the_keyboard_reaches_the_login_form_and_the_menu(seeded, desktop):
    base, page = seeded.base_url, desktop
    page.goto(f"{base}/admin/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "email"
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Overview").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
