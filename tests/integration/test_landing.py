"""`/`: the page the banner of `make run` points at; public, so nothing secret and no figure on it."""

from __future__ import annotations

import re


def test_the_landing_page_says_what_keepwarm_is_and_where_to_go(client, settings):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    text = response.text
    assert settings.intake_address in text and f'href="mailto:{settings.intake_address}"' in text
    assert 'href="/admin/"' in text and 'href="/healthz"' in text
    assert "thanks the" in text and "debrief" in text
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_landing_page_holds_no_secret_and_no_count(client, settings, engine):
    text = client.get("/").text
    for secret in (settings.secret_key, settings.database_url, settings.redis_url, settings.imap_url,
                   settings.smtp_url):
        assert not secret or secret not in text
    words = re.sub(r"<[^>]+>", " ", text.split("<main", 1)[1]).replace(settings.intake_address, "")
    assert not re.search(r"\d", words)  # no figure of any kind
    assert "csrf" not in text.lower()  # no form, so no session cookie is needed
    assert client.get("/").headers.get("Set-Cookie") is None
