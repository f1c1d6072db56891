"""Inviting an admin in Debian's Chromium: the link made on the Admins page, opened in another browser, a password
chosen there, then the newcomer logs in."""

from __future__ import annotations

import pytest

from service.team.admins import create_admin
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
ADMIN, PASSWORD = "ada@acme.example", "correct horse battery"
NEWCOMER, NEW_PASSWORD = "grace@acme.example", "a fresh long password"


def _log_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_an_admin_invites_another_who_sets_a_password_and_logs_in(live, engine, browser, desktop):
    create_admin(engine, ADMIN, PASSWORD)
    base = live.base_url
    _log_in(desktop, base, ADMIN, PASSWORD)
    desktop.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Admins").click()
    desktop.get_by_role("heading", name="Admins", exact=True).wait_for()
    desktop.get_by_label("Email of the new admin").fill(NEWCOMER)
    desktop.get_by_role("button", name="Make an invitation link").click()
    desktop.get_by_role("heading", name=f"Invitation link for {NEWCOMER}").wait_for()
    link = desktop.get_by_label("Link", exact=True).input_value()
    assert link.startswith(f"{base}/admin/password/invite/")
    screenshot(desktop, "admin-invite-link")

    newcomer = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # another person, a phone
    try:
        newcomer.goto(link)
        newcomer.get_by_role("heading", name="Welcome to Keepwarm admin").wait_for()
        newcomer.get_by_label("New password").fill(NEW_PASSWORD)
        newcomer.get_by_label("The same password again").fill(NEW_PASSWORD)
        screenshot(newcomer, "admin-invite-set-password-phone")
        newcomer.get_by_role("button", name="Set the password").click()
        newcomer.get_by_text("Your password is set: log in with it.").wait_for()
        newcomer.get_by_label("Email").fill(NEWCOMER)
        newcomer.get_by_label("Password").fill(NEW_PASSWORD)
        newcomer.get_by_role("button", name="Log in").click()
        newcomer.get_by_role("heading", name="Overview").wait_for()
        assert NEWCOMER in newcomer.get_by_role("navigation", name="Admin sections").inner_text()

        newcomer.goto(link)  # the link worked once
        newcomer.get_by_role("heading", name="Link already used").wait_for()
        screenshot(newcomer, "admin-invite-used-phone")
    finally:
        newcomer.context.close()

    desktop.reload()
    assert "invited" not in desktop.locator("table").inner_text()
