"""The admins' insights page in a real Chromium, at desktop and at phone width."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.team.admins import create_admin
from tests.browser.conftest import screenshot
from tests.integration.test_insights import seed_history

pytestmark = pytest.mark.browser
PASSWORD = "a long enough password"


@pytest.fixture
def admin(live, engine, settings):
    seed_history(engine, settings, datetime.now(UTC))
    create_admin(engine, "boss@acme.example", PASSWORD)
    return live


def log_in(page, live) -> None:
    page.goto(f"{live.base_url}/admin/login?next=/admin/insights/")
    page.get_by_label("Email").fill("boss@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if "/admin/insights" not in page.url:  # the login page may send us home instead
        page.goto(f"{live.base_url}/admin/insights/")


def test_the_insights_read_well_on_a_wide_screen(admin, desktop):
    log_in(desktop, admin)
    assert desktop.get_by_role("heading", level=1).inner_text() == "What we learn from lost sales"
    assert desktop.locator("svg.kw-chart").count() == 4
    assert desktop.get_by_role("img", name="Lost outcomes per month, by cause").is_visible()
    widths = desktop.locator("svg.kw-chart").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert min(widths) > 400  # two charts per row at most, never squeezed
    screenshot(desktop, "insights-desktop")


def test_the_insights_fit_a_phone_without_sideways_scrolling(admin, phone):
    log_in(phone, admin)
    phone.get_by_role("heading", name="Lost outcomes per month").wait_for()
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    phone.get_by_label("Period").select_option("6")
    phone.get_by_role("button", name="Show").click()
    phone.get_by_text("The last 6 months").wait_for()
    screenshot(phone, "insights-phone")
