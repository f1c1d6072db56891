"""Signed webhooks against a real HTTP receiver on loopback: emission in the change's transaction, the signature,
retries (receiver down, 500s, slow answers), no redirects, SSRF refusals, leases, a Redis flush, redelivery."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from service import context, events
from service.db import session_scope
from service.models import WEBHOOK_EVENTS, OutboundEmail, WebhookDelivery, WebhookEndpoint
from service.outbox import status
from service.outbox.rows import new_outbound
from service.run.worker import BoundedWorker
from service.webhooks import delivery, endpoints
from service.webhooks.addresses import RefusedAddress
from service.webhooks.signing import HEADER, verify
from tests.webhook_receiver import running_receiver, start_receiver


@pytest.fixture
def receiver():
    with running_receiver() as started:
        yield started


@pytest.fixture
def services(settings, engine, redis):
    """This process's services, allowed to post to loopback, with a short HTTP timeout."""
    configured = context.configure(settings.with_overrides(webhook_allow_private=True, webhook_timeout=1.0))
    configured.__dict__["engine"] = engine
    return configured


def register(services, url: str, chosen=WEBHOOK_EVENTS) -> tuple[int, str]:
    with session_scope(services.engine) as session:
        endpoint, secret = endpoints.create_endpoint(session, services.settings, url, list(chosen), actor="tests")
        return endpoint.id, secret


def canceled_email(services, reps, *, to: str = "jane@globex.example") -> int:
    """A scheduled email, then canceled by a rep: one `email.canceled` event (and `email.scheduled` none: the row
    was added directly, not planned)."""
    with session_scope(services.engine) as session:
        row = new_outbound(services.settings, kind="thank_you", rep=reps[0], to_address=to, to_name="Jane",
                           due_at=datetime.now(UTC) + timedelta(days=1), outcome_id=None, language="en")
        session.add(row)
        session.flush()
        status.cancel(session, OutboundEmail.id == row.id, reason="by the rep")
        return row.id


def deliveries(engine) -> list[WebhookDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def only_delivery(engine) -> WebhookDelivery:
    rows = deliveries(engine)
    assert len(rows) == 1, rows
    return rows[0]


def work(services) -> None:
    BoundedWorker([services.queue(q) for q in context.QUEUES], connection=services.redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------------- emission


def test_without_endpoints_a_change_emits_nothing(services, reps):
    canceled_email(services, reps)
    assert deliveries(services.engine) == []


def test_only_subscribed_active_endpoints_get_a_row_and_a_rolled_back_change_emits_nothing(services, reps, receiver):
    wanted, _ = register(services, receiver.url, ["email.canceled"])
    register(services, receiver.url, ["email.sent"])
    with pytest.raises(RuntimeError), session_scope(services.engine) as session:
        row = new_outbound(services.settings, kind="thank_you", rep=reps[0], to_address="a@globex.example",
                           to_name=None, due_at=datetime.now(UTC), outcome_id=None, language="en")
        session.add(row)
        session.flush()
        status.cancel(session, OutboundEmail.id == row.id, reason="by the rep")
        raise RuntimeError("the change fails after the emission")
    assert deliveries(services.engine) == []
    outbound_id = canceled_email(services, reps)
    row = only_delivery(services.engine)
    assert (row.endpoint_id, row.event, row.status) == (wanted, "email.canceled", "pending")
    event = json.loads(row.body)
    assert event["type"] == "email.canceled" and event["id"] == row.event_id and event["created"].endswith("Z")
    assert event["data"]["object"]["id"] == outbound_id and event["data"]["object"]["status"] == "canceled"


def test_the_same_occurrence_emitted_twice_is_one_delivery(services, reps, receiver):
    register(services, receiver.url, ["email.sent"])
    outbound_id = canceled_email(services, reps)
    for _ in range(2):
        with session_scope(services.engine) as session:
            session.execute(sa.update(OutboundEmail).where(OutboundEmail.id == outbound_id).values(status="sent"))
            events.emit_emails(session, "email.sent", [outbound_id])
    assert len(deliveries(services.engine)) == 1


def test_one_change_reported_to_thousands_emits_every_delivery_in_its_transaction(services, reps, receiver):
    """7,000 occurrences in one emission (a retry of a long relay outage): one INSERT would pass PostgreSQL's
    65,535 parameters and roll back the change it reports; written in chunks, all are there."""
    register(services, receiver.url, ["customer.unsubscribed"])
    with session_scope(services.engine) as session:
        added = events.emit(session, "customer.unsubscribed",
                            [(f"bulk-{n}", {"email": f"c{n}@client.example", "reason": "test"}) for n in range(7000)])
    assert added == 7000 and len(deliveries(services.engine)) == 7000


# ---------------------------------------------------------------------------------------------------- delivering


def test_a_delivery_is_signed_posted_once_and_never_again_after_its_2xx(services, reps, receiver):
    _, secret = register(services, receiver.url)
    canceled_email(services, reps)
    work(services)  # the job queued after the commit
    (arrival,) = receiver.received()
    row = only_delivery(services.engine)
    assert row.status == "delivered" and row.response_code == 200 and row.attempts == 1
    assert arrival.path == "/hooks/keepwarm?team=1" and arrival.headers["Content-Type"] == "application/json"
    assert verify(secret, arrival.headers[HEADER], arrival.body)
    assert not verify(secret, arrival.headers[HEADER], arrival.body.replace(b"canceled", b"sent"))
    assert not verify("whsec_other", arrival.headers[HEADER], arrival.body)
    assert arrival.headers["Keepwarm-Event-Id"] == row.event_id == arrival.event["id"]
    assert delivery.deliver(services, row.id) == "not pending"
    delivery.reconcile(services)
    work(services)
    assert len(receiver.received()) == 1


def test_a_replayed_signature_is_refused_by_the_receivers_check(services, reps, receiver):
    _, secret = register(services, receiver.url)
    canceled_email(services, reps)
    delivery.deliver(services, only_delivery(services.engine).id)
    (arrival,) = receiver.received()
    later = datetime.now(UTC).timestamp() + 3600
    assert verify(secret, arrival.headers[HEADER], arrival.body)
    assert not verify(secret, arrival.headers[HEADER], arrival.body, now=later)


def test_a_receiver_down_is_retried_with_backoff_then_failed_after_a_day(services, reps):
    register(services, f"http://127.0.0.1:{closed_port()}/hook")
    canceled_email(services, reps)
    row = only_delivery(services.engine)
    assert delivery.deliver(services, row.id) == "pending"
    row = only_delivery(services.engine)
    assert row.response_code is None and row.last_error and row.due_at > datetime.now(UTC)
    assert delivery.deliver(services, row.id) == "not pending"  # not due yet
    moment = row.due_at
    for _ in range(20):
        if only_delivery(services.engine).status != "pending":
            break
        moment = max(moment, only_delivery(services.engine).due_at)
        delivery.deliver(services, row.id, now=moment)
    row = only_delivery(services.engine)
    assert row.status == "failed" and "a day after the event" in row.last_error
    assert moment - row.created_at <= timedelta(days=1)
    gaps = 2 <= row.attempts <= 20
    assert gaps


def test_a_host_that_does_not_resolve_at_delivery_is_retried_not_failed(services, reps, receiver):
    """A resolver's hiccup (here a name that never resolves, RFC 6761's .invalid) is retried like a receiver down;
    before, it failed the delivery at once and the event was lost for that receiver."""
    endpoint_id, _ = register(services, receiver.url)
    with session_scope(services.engine) as session:
        session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                        .values(url="http://keepwarm-receiver.invalid/hook"))
    canceled_email(services, reps)
    assert delivery.deliver(services, only_delivery(services.engine).id) == "pending"
    row = only_delivery(services.engine)
    assert "does not resolve" in row.last_error and row.due_at > datetime.now(UTC)


def test_500s_are_retried_until_the_receiver_answers(services, reps, receiver):
    _, secret = register(services, receiver.url)
    receiver.code = 500
    canceled_email(services, reps)
    row = only_delivery(services.engine)
    assert delivery.deliver(services, row.id) == "pending"
    first = only_delivery(services.engine)
    first_step = timedelta(seconds=delivery.RETRY_DELAYS[0])  # the retry schedule's first step, counted from the try
    assert first.response_code == 500 and first.due_at == first.updated_at + first_step
    receiver.code = 204
    assert delivery.deliver(services, row.id, now=first.due_at) == "delivered"
    assert [a.event["id"] for a in receiver.received()] == [row.event_id] * 2  # same event id on the retry
    assert only_delivery(services.engine).attempts == 2


def test_a_slow_answer_past_the_timeout_is_a_retry(services, reps, receiver):
    register(services, receiver.url)
    receiver.delay = 3  # the timeout is 1 s
    canceled_email(services, reps)
    assert delivery.deliver(services, only_delivery(services.engine).id) == "pending"
    row = only_delivery(services.engine)
    assert "timed out" in row.last_error and row.response_code is None


def test_a_4xx_fails_at_once_and_a_redirect_is_not_followed(services, reps, receiver):
    register(services, receiver.url, ["email.canceled"])
    receiver.code = 404
    canceled_email(services, reps)
    first = only_delivery(services.engine)
    assert delivery.deliver(services, first.id) == "failed"
    other = start_receiver()
    try:
        receiver.redirect_to = other.url
        canceled_email(services, reps, to="bob@globex.example")
        second = deliveries(services.engine)[-1]
        assert delivery.deliver(services, second.id) == "failed"
        assert "redirects are not followed" in deliveries(services.engine)[-1].last_error
        assert other.received() == []
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_loopback_and_private_addresses_are_refused_unless_allowed(services, reps, receiver):
    strict = services.settings.with_overrides(webhook_allow_private=False)
    for url in (receiver.url, "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
                "http://[::ffff:127.0.0.1]/x", "http://224.0.0.1/x", "ftp://example.com/x",
                "http://user:pw@example.com/x"):
        with pytest.raises(RefusedAddress), session_scope(services.engine) as session:
            endpoints.create_endpoint(session, strict, url, ["email.canceled"])
    register(services, receiver.url, ["email.canceled"])  # allowed by the setting, as the tests run
    canceled_email(services, reps)
    services.settings = strict  # the setting turned off afterwards: checked again at every delivery
    assert delivery.deliver(services, only_delivery(services.engine).id) == "failed"
    assert "loopback" in only_delivery(services.engine).last_error and receiver.received() == []


def test_a_changed_app_key_fails_deliveries_saying_so(services, reps, receiver):
    register(services, receiver.url, ["email.canceled"])
    canceled_email(services, reps)
    services.settings = services.settings.with_overrides(secret_key="another-secret-key-0123456789")
    assert delivery.deliver(services, only_delivery(services.engine).id) == "failed"
    assert "KEEPWARM_SECRET_KEY changed" in only_delivery(services.engine).last_error


# ---------------------------------------------------------------------------------------------------- recovering


def test_a_redis_flush_is_rebuilt_from_the_database_by_the_reconciler(services, reps, receiver):
    register(services, receiver.url)
    canceled_email(services, reps)
    services.redis.flushall()
    work(services)
    assert receiver.received() == []
    assert delivery.reconcile(services) == 1
    work(services)
    assert len(receiver.received()) == 1 and only_delivery(services.engine).status == "delivered"


def test_a_try_abandoned_by_a_dead_worker_is_given_back_once_its_lease_lapses(services, reps, receiver):
    register(services, receiver.url)
    canceled_email(services, reps)
    row = only_delivery(services.engine)
    claimed = delivery._claim(services, row.id, datetime.now(UTC))  # the worker dies right after its claim
    assert claimed is not None and delivery.deliver(services, row.id) == "not pending"
    delivery.reconcile(services)  # the lease has not lapsed: left alone
    assert only_delivery(services.engine).status == "sending"
    delivery.reconcile(services, now=datetime.now(UTC) + timedelta(minutes=5))
    work(services)
    row = only_delivery(services.engine)
    assert row.status == "delivered" and row.attempts == 2 and len(receiver.received()) == 1
    # The dead worker's late answer, had it come, records nothing over the new try.
    answer = delivery.Answer(500, "", None, 1)
    assert delivery._record(services, claimed, answer, datetime.now(UTC), retry=True) == "lease lost"
    assert only_delivery(services.engine).status == "delivered"


def test_a_redelivery_is_a_new_row_with_the_same_event_id(services, reps, receiver):
    register(services, receiver.url)
    canceled_email(services, reps)
    work(services)
    with session_scope(services.engine) as session:
        original = session.exec(select(WebhookDelivery)).one()
        copy = endpoints.redeliver(session, original)
        assert copy is not None and copy.redelivery == 1
    work(services)
    first, second = receiver.received()
    assert first.event["id"] == second.event["id"] and first.body == second.body
    assert [r.status for r in deliveries(services.engine)] == ["delivered", "delivered"]


def test_a_disabled_endpoint_keeps_its_deliveries_until_enabled(services, reps, receiver):
    endpoint_id, _ = register(services, receiver.url)
    canceled_email(services, reps)
    with session_scope(services.engine) as session:
        endpoints.set_active(session, session.get(endpoints.WebhookEndpoint, endpoint_id), False)
    work(services)
    canceled_email(services, reps, to="bob@globex.example")  # emitted while disabled: not for it
    assert receiver.received() == [] and len(deliveries(services.engine)) == 1
    with session_scope(services.engine) as session:
        endpoints.set_active(session, session.get(endpoints.WebhookEndpoint, endpoint_id), True)
    work(services)
    assert len(receiver.received()) == 1


def test_metrics_count_deliveries_by_endpoint_event_and_status(services, reps, receiver, client):
    endpoint_id, _ = register(services, receiver.url)
    canceled_email(services, reps)
    text = client.get("/metrics").get_data(as_text=True)
    assert (f'keepwarm_webhook_deliveries{{endpoint="{endpoint_id}",event="email.canceled",host="127.0.0.1",'
            f'status="pending"}} 1.0') in text


def test_a_send_that_fails_or_is_sent_emits_once_and_only_when_the_update_matched(services, reps, receiver):
    register(services, receiver.url, ["email.sent", "email.failed"])
    with session_scope(services.engine) as session:
        for to in ("a@globex.example", "b@globex.example"):
            session.add(new_outbound(services.settings, kind="thank_you", rep=reps[0], to_address=to, to_name=None,
                                     due_at=datetime.now(UTC), outcome_id=None, language="en"))
    with session_scope(services.engine) as session:
        first, second = status.claim(session, holder="w", until=datetime.now(UTC), limit=10)
    with session_scope(services.engine) as session:
        assert status.fail(session, first, "550 5.1.1 no such user", failure="address")
        assert not status.fail(session, first, "again", failure="address")  # no longer sending: no event
        status.sent(session, [(second, datetime.now(UTC))])
        status.sent(session, [(second, datetime.now(UTC))])
    events_seen = sorted((r.event, json.loads(r.body)["data"]["object"]["id"]) for r in deliveries(services.engine))
    assert events_seen == [("email.failed", first), ("email.sent", second)]
