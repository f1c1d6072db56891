"""Browser fixtures: Debian's Chromium driven by Playwright, against the app served on a free loopback port."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from service import context, create_app
from service.run.devstack import free_port

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make install as root installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def _page_at(browser, width: int, height: int):
    page_context = browser.new_context(viewport={"width": width, "height": height})
    yield page_context.new_page()
    page_context.close()


@pytest.fixture
def phone(browser):
    """A page at a phone's size (390×844)."""
    yield from _page_at(browser, 390, 844)


@pytest.fixture
def desktop(browser):
    """A page at a laptop's size (1280×900)."""
    yield from _page_at(browser, 1280, 900)


@pytest.fixture
def live(settings, engine, reps):
    """The web app on a free port; settings' base_url points at it so emailed links open here."""
    port = free_port()
    live_settings = settings.with_overrides(base_url=f"http://127.0.0.1:{port}")
    app = create_app(live_settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)  # a quick shutdown
    thread.start()
    yield live_settings
    server.shutdown()
    thread.join(5)
    context.configure(settings)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
