"""The reps import in Debian's Chromium: choose a CSV on the reps page, read the preview, import the good rows."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from service.models import Rep
from service.team.admins import create_admin
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
ADMIN, PASSWORD = "ada@acme.example", "correct horse battery"
TEAM = ("email,name,time zone,aliases,language\n"
        "mia@bulk.example,Mia Rossi,Europe/Rome,mia.r@bulk.example;mr@bulk.example,it\n"
        "joe@bulk.example,Joe,Mars/Olympus,,\n"
        "tom.baker@acme.example,Tom Baker,Europe/Dublin,,en\n")


def test_an_admin_imports_reps_from_a_csv_file(live, engine, desktop, tmp_path):
    create_admin(engine, ADMIN, PASSWORD)
    path = tmp_path / "team.csv"
    path.write_text(TEAM, encoding="utf-8")
    page, base = desktop, live.base_url
    page.goto(f"{base}/admin/reps")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/admin/reps#import")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Preview the import").click()
    summary = page.locator("#import-summary")
    summary.get_by_text("Preview, nothing written yet", exact=False).wait_for()
    assert "1 new, 1 updated" in " ".join(summary.inner_text().split()) and "(row 3)" in summary.inner_text()
    assert "not an IANA time zone" in page.locator("#import-rows").inner_text()
    screenshot(page, "admin-reps-import-preview")
    page.get_by_role("button", name="Import the 2 good rows").click()
    page.locator("#import-summary").get_by_text("Written:", exact=False).wait_for()
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Rep).where(Rep.email == "mia@bulk.example")).one() == 1
        assert session.exec(select(Rep.timezone).where(Rep.email == "tom.baker@acme.example")).one() == \
            "Europe/Dublin"
