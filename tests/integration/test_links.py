"""Signed links: one-click unsubscribe (no CSRF), the confirm page, and the rep's cancel/postpone pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service.models import Customer, OutboundEmail, Rep, Suppression
from service.outbox.rows import new_outbound
from service.outbox.template_context import manage_urls, unsubscribe_url
from service.tokens import Signer


@pytest.fixture
def scheduled(engine, settings):
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        customer = Customer(email="jane@globex.example", name="Jane")
        session.add(customer)
        session.flush()
        row = new_outbound(settings, kind="recontact", variant="budget", rep=rep, to_address=customer.email,
                           to_name="Jane", due_at=datetime.now(UTC) + timedelta(days=30), outcome_id=None,
                           language="en", customer_id=customer.id)
        session.add(row)
        session.commit()
        return row.id, rep.id


def _path(url: str) -> str:
    return url.removeprefix("http://keepwarm.test")


def _status(engine, outbound_id):
    with Session(engine) as session:
        return session.get(OutboundEmail, outbound_id)


def test_one_click_unsubscribe_needs_no_cookie_or_csrf_and_cancels_pending(client, settings, engine, scheduled):
    url = _path(unsubscribe_url(Signer(settings), "jane@globex.example"))
    response = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"unsubscribed" in response.data
    with Session(engine) as session:
        assert session.exec(select(Suppression).where(Suppression.email == "jane@globex.example")).one()
    assert _status(engine, scheduled[0]).canceled_reason == "suppressed"


def test_the_unsubscribe_page_asks_first_then_confirms(client, settings, engine, scheduled):
    url = _path(unsubscribe_url(Signer(settings), "jane@globex.example"))
    page = client.get(url)
    assert page.status_code == 200 and b"Yes, unsubscribe me" in page.data
    assert _status(engine, scheduled[0]).status == "scheduled"  # a GET (a link scanner) changes nothing
    assert client.post(url).status_code == 200
    assert _status(engine, scheduled[0]).status == "canceled"


@pytest.mark.parametrize("token", ["garbage", "eyJlbWFpbCI6ImphbmVAZ2xvYmV4LmV4YW1wbGUifQ.xx.yy"])
def test_a_bad_unsubscribe_token_gets_a_clear_400(client, token):
    for response in (client.get(f"/unsubscribe/{token}"), client.post(f"/unsubscribe/{token}")):
        assert response.status_code == 400 and b"not valid" in response.data


def test_a_token_for_another_page_is_refused(client, settings, scheduled):
    manage_token = Signer(settings).make("manage", {"email": "jane@globex.example"})
    assert client.post(f"/unsubscribe/{manage_token}").status_code == 400


def test_cancel_link_shows_a_confirm_page_and_needs_csrf(app, client, settings, engine, scheduled):
    outbound_id, rep_id = scheduled
    url = _path(manage_urls(Signer(settings), outbound_id, rep_id)["cancel"])
    page = client.get(url)
    assert page.status_code == 200 and b"Cancel this email" in page.data
    assert client.post(url, data={}).status_code == 400  # no CSRF token
    assert _status(engine, outbound_id).status == "scheduled"
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    assert client.post(url, data={"csrf_token": csrf}).status_code == 200
    assert _status(engine, outbound_id).status == "canceled"


def test_postpone_moves_the_due_time(client, settings, engine, scheduled):
    outbound_id, rep_id = scheduled
    before = _status(engine, outbound_id).due_at
    url = _path(manage_urls(Signer(settings), outbound_id, rep_id)["postpone"])
    page = client.get(url)
    csrf = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()
    assert client.post(url, data={"csrf_token": csrf, "days": "14"}).status_code == 200
    assert _status(engine, outbound_id).due_at == before + timedelta(days=14)
    bad = client.post(url, data={"csrf_token": csrf, "days": "-3"})
    assert bad.status_code == 200 and _status(engine, outbound_id).due_at == before + timedelta(days=14)


def test_an_expired_manage_link_says_so(client, settings, scheduled, monkeypatch):
    outbound_id, rep_id = scheduled
    url = _path(manage_urls(Signer(settings), outbound_id, rep_id)["cancel"])
    import time as time_module

    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + 61 * 86400)
    response = client.get(url)
    assert response.status_code == 410 and b"expired" in response.data


def test_manage_and_unsubscribe_pages_are_never_cached(client, settings, scheduled):
    outbound_id, rep_id = scheduled
    links = manage_urls(Signer(settings), outbound_id, rep_id)
    pages = [client.get(_path(links["cancel"])), client.get(_path(links["postpone"])),
             client.get(_path(unsubscribe_url(Signer(settings), "jane@globex.example"))),
             client.post(_path(unsubscribe_url(Signer(settings), "jane@globex.example"))),
             client.get("/manage/cancel/not-a-token"), client.get("/unsubscribe/not-a-token")]
    assert [p.status_code for p in pages] == [200, 200, 200, 200, 400, 400]
    assert {p.headers.get("Cache-Control") for p in pages} == {"no-store"}
