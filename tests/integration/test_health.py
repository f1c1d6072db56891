"""Health, readiness, metrics and the security headers every page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from service import create_app
from service.intake.imap import NETWORK_ERRORS
from service.metrics import MAILBOX_HEALTH_KEY, mailbox_key
from service.pipeline.polling import poller
from tests.mail import recap


@pytest.fixture
def client(settings, engine, reps, redis):
    app = create_app(settings)
    app.config.update(TESTING=True)
    return app.test_client()


def test_healthz_and_readyz_answer_when_everything_is_up(client, settings, engine, mailbox_user):
    assert client.get("/healthz").json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert client.get("/readyz").json["checks"]["imap"].startswith("error: no poller has reported")
    poller(settings, engine).poll_once()  # the poller reports on its mailbox; the web never logs in to it
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"]["imap"] == "ok"


def test_readyz_names_what_is_down_and_since_when(settings, engine, redis):
    down = settings.with_overrides(imap_url="imap://nobody:x@127.0.0.1:1/INBOX")
    app = create_app(down)
    for _ in range(2):
        with pytest.raises(NETWORK_ERRORS):
            poller(down, engine).poll_once()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["checks"]["database"] == "ok"
    imap = response.json["checks"]["imap"]
    assert imap.startswith("error: ConnectionRefusedError") and "(since " in imap


def test_readyz_says_when_the_poller_has_gone_quiet(client, settings, engine, mailbox_user, redis):
    poller(settings, engine).poll_once()
    key = MAILBOX_HEALTH_KEY.format(mailbox_key(settings.imap()))
    report = json.loads(redis.get(key))
    redis.set(key, json.dumps({**report, "at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}))
    response = client.get("/readyz")
    assert response.status_code == 503 and "no pass of the poller since" in response.json["checks"]["imap"]


def test_metrics_count_messages_emails_and_queues(client, imap, settings, engine):
    imap.append("INBOX", recap(1, body="Lost for now: no budget until March.\n\nTom"))
    imap.append("INBOX", recap(2, sender="someone@elsewhere.example"))
    poller(settings, engine).poll_once()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'keepwarm_inbound_messages_total{reason="",status="processed"} 1.0' in text
    assert 'keepwarm_inbound_messages_total{reason="unknown_sender",status="ignored"} 1.0' in text
    assert 'keepwarm_outbound_emails{kind="thank_you",status="scheduled"} 1.0' in text
    assert 'keepwarm_queue_jobs{queue="outbox",state="queued"}' in text
    for family in ("keepwarm_send_lateness_seconds_bucket", "keepwarm_imap_errors_total"):
        assert family in text


def test_every_page_carries_security_headers(client):
    for path in ("/healthz", "/unsubscribe/garbage"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        assert headers["X-Content-Type-Options"] == "nosniff"
