"""/admin/webhooks over HTTP: register an endpoint (secret shown once, never logged), its delivery log, redeliver,
disable, roll the secret, remove; a refused address says why."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from service import context
from service.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from service.team.admins import create_admin
from service.webhooks import delivery
from service.webhooks.signing import HEADER, verify
from tests.integration.test_admin import ADMIN, PASSWORD, csrf_token, login
from tests.integration.test_webhooks import canceled_email
from tests.webhook_receiver import running_receiver

_SECRET = re.compile(r'id="secret-value" type="text" readonly value="(whsec_[^"]+)"')


@pytest.fixture
def receiver():
    with running_receiver() as started:
        yield started


@pytest.fixture
def logged_in(client, engine):
    create_admin(engine, ADMIN, PASSWORD)
    assert login(client).status_code == 302
    return client


@pytest.fixture
def allowing(app):
    """The app's services allowed to post to loopback, as in the tests of delivery."""
    services = app.config["KEEPWARM"]
    services.settings = services.settings.with_overrides(webhook_allow_private=True, webhook_timeout=1.0)
    context.configure(services.settings)
    context.current().__dict__["engine"] = services.engine
    return services


def add_endpoint(client, url: str, events=("email.canceled",)):
    return client.post("/admin/webhooks", data={"csrf_token": csrf_token(client, "/admin/webhooks"), "url": url,
                                                "description": "CRM", "events": list(events)})


def test_an_endpoint_is_added_with_its_secret_shown_once_and_signing(logged_in, allowing, engine, reps, receiver):
    page = add_endpoint(logged_in, receiver.url)
    assert page.status_code == 200
    secret = _SECRET.search(page.text).group(1)
    listing = logged_in.get("/admin/webhooks").text
    assert receiver.url.replace("&", "&amp;") in listing and secret not in listing
    with Session(engine) as session:
        endpoint = session.exec(select(WebhookEndpoint)).one()
        stored = [endpoint.salt, endpoint.fingerprint, endpoint.url, str(endpoint.events)]
        audit = [(e.action, str(e.detail)) for e in session.exec(select(AuditEntry))]
    assert all(secret not in value for value in stored) and ("webhook.create" in [a for a, _ in audit])
    assert all(secret not in detail for _, detail in audit)
    canceled_email(allowing, reps)
    with Session(engine) as session:
        delivery_id = session.exec(select(WebhookDelivery.id)).one()
    delivery.deliver(allowing, delivery_id)
    (arrival,) = receiver.received()
    assert verify(secret, arrival.headers[HEADER], arrival.body)
    log = logged_in.get(f"/admin/webhooks/{endpoint.id}").text
    assert "email.canceled" in log and "Redeliver" in log and secret not in log


def test_redeliver_disable_roll_and_remove(logged_in, allowing, engine, reps, receiver):
    first = _SECRET.search(add_endpoint(logged_in, receiver.url).text).group(1)
    with Session(engine) as session:
        endpoint_id = session.exec(select(WebhookEndpoint.id)).one()
    canceled_email(allowing, reps)
    with Session(engine) as session:
        delivery_id = session.exec(select(WebhookDelivery.id)).one()
    delivery.deliver(allowing, delivery_id)
    token = csrf_token(logged_in, f"/admin/webhooks/{endpoint_id}")
    answer = logged_in.post(f"/admin/webhooks/deliveries/{delivery_id}/redeliver", data={"csrf_token": token})
    assert answer.status_code == 302
    with Session(engine) as session:
        rows = list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [r.redelivery for r in rows] == [0, 1] and rows[0].event_id == rows[1].event_id
    rolled = logged_in.post(f"/admin/webhooks/{endpoint_id}/roll", data={"csrf_token": token})
    second = _SECRET.search(rolled.text).group(1)
    assert second != first
    delivery.deliver(allowing, rows[1].id)
    arrival = receiver.received()[-1]
    assert verify(second, arrival.headers[HEADER], arrival.body)
    assert not verify(first, arrival.headers[HEADER], arrival.body)
    logged_in.post(f"/admin/webhooks/{endpoint_id}/disable", data={"csrf_token": token})
    with Session(engine) as session:
        assert session.get(WebhookEndpoint, endpoint_id).active is False
    assert logged_in.post(f"/admin/webhooks/{endpoint_id}/delete", data={"csrf_token": token}).status_code == 302
    with Session(engine) as session:
        assert session.exec(select(WebhookEndpoint)).all() == [] and session.exec(select(WebhookDelivery)).all() == []
        actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-4:] == ["webhook.redeliver", "webhook.roll_secret", "webhook.disable", "webhook.delete"]


def test_a_private_address_is_refused_with_the_reason(logged_in, app, engine):
    page = add_endpoint(logged_in, "http://10.0.0.5/hook")
    assert page.status_code == 422 and "a private address" in page.text
    page = add_endpoint(logged_in, "https://example.com/hook", events=())
    assert page.status_code == 422
    with Session(engine) as session:
        assert session.exec(select(WebhookEndpoint)).all() == []


def test_the_pages_need_a_login(client):
    assert client.get("/admin/webhooks").status_code in (302, 401)


def test_every_change_needs_a_login_and_a_csrf_token(client, engine, allowing, receiver):
    """Security review: the POSTs (add, roll, disable, delete, redeliver) refuse a visitor without a session, and a
    session without the form's CSRF token; the endpoint and its secret stay as they were."""
    create_admin(engine, ADMIN, PASSWORD)
    assert login(client).status_code == 302
    assert add_endpoint(client, receiver.url).status_code == 200
    with Session(engine) as session:
        endpoint = session.exec(select(WebhookEndpoint)).one()
        endpoint_id, salt = endpoint.id, endpoint.salt
    changes = [f"/admin/webhooks/{endpoint_id}/{c}" for c in ("roll", "disable", "delete")]
    changes += ["/admin/webhooks/deliveries/1/redeliver"]
    for path in ["/admin/webhooks", *changes]:  # logged in, no token
        assert client.post(path, data={"url": "http://127.0.0.1:1/x", "events": ["email.sent"]}).status_code == 400
    token = csrf_token(client, "/admin/webhooks")
    client.post("/admin/logout", data={"csrf_token": token})
    for path in ["/admin/webhooks", *changes]:  # a token, but no session any more
        assert client.post(path, data={"csrf_token": token}).status_code in (302, 400, 401)
    assert client.get(f"/admin/webhooks/{endpoint_id}").status_code in (302, 401)
    with Session(engine) as session:
        (kept,) = session.exec(select(WebhookEndpoint)).all()
        assert (kept.id, kept.salt, kept.active) == (endpoint_id, salt, True)
