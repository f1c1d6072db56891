"""Done means: a receiver that verifies the signature gets every event of a BCC → summary → debrief → recontact run
exactly once by event id, even across a worker killed -9 mid-delivery and started again under its name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from service import context
from service.db import session_scope
from service.models import WEBHOOK_EVENTS, OutboundEmail, Outcome, WebhookDelivery
from service.outbox import status
from service.pipeline.debrief import Answers, save_debrief
from service.webhooks import endpoints
from tests.integration.test_outbox import LOST, ingest
from tests.integration.test_worker import stop_workers
from tests.mail import recap, wait_until
from tests.webhook_receiver import running_receiver

SECRET_KEY = "test-secret-0123456789abcdef"  # the worker's: webhook secrets are derived from it


@pytest.fixture
def receiver():
    with running_receiver() as started:
        yield started


def worker(settings, tmp_path, name: str) -> subprocess.Popen:
    env = {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url, "KEEPWARM_REDIS_URL": settings.redis_url,
           "KEEPWARM_SMTP_URL": settings.smtp_url, "KEEPWARM_INTAKE_ADDRESS": settings.intake_address,
           "KEEPWARM_SECRET_KEY": SECRET_KEY, "KEEPWARM_INSTANCE_DIR": str(tmp_path),
           "KEEPWARM_WORKER_ID": "worker-a", "KEEPWARM_WEBHOOK_ALLOW_PRIVATE": "true",
           "KEEPWARM_WEBHOOK_TIMEOUT": "5"}
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, start_new_session=True,
                            stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def _run_the_story(settings, engine, imap) -> None:
    """BCC'd recap → outcome and plan; the rep's debrief; the customer's thank-you and the summary made due now, the
    recontact canceled by the rep; someone unsubscribes."""
    ingest(imap, settings, engine, recap(1, body=LOST, subject="Our meeting today"))
    with session_scope(engine) as session:
        outcome = session.exec(select(Outcome)).one()
        answers = Answers(outcome="lost", theirs=("timing",), plan="recontact_on_date",
                          recontact_on=date.today() + timedelta(days=90), personal_line="Talk soon.")
        save_debrief(session, settings, outcome, answers)
    with session_scope(engine) as session:
        due = session.exec(select(OutboundEmail).where(OutboundEmail.status == "scheduled")).all()
        for row in due:
            if row.kind in ("thank_you", "rep_summary"):
                status.send_now(session, row.id)
        status.cancel(session, OutboundEmail.kind == "recontact", reason="canceled by the rep")
    with session_scope(engine) as session:
        status.suppress(session, "someone.else@globex.example", "unsubscribed (one click)")


@pytest.mark.slow
def test_every_event_of_a_run_arrives_once_by_id_across_a_worker_killed_mid_delivery(
        imap, settings, engine, reps, redis, smtp, receiver, tmp_path):
    settings = settings.with_overrides(secret_key=SECRET_KEY, webhook_allow_private=True)
    context.configure(settings).__dict__["engine"] = engine
    with session_scope(engine) as session:
        _, secret = endpoints.create_endpoint(session, settings, receiver.url, list(WEBHOOK_EVENTS))
    receiver.delay = 0.3  # each answer takes a while: the kill lands while one delivery is on the wire
    _run_the_story(settings, engine, imap)
    first = worker(settings, tmp_path, "first")
    try:
        wait_until(lambda: receiver.received(), 60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        second = worker(settings, tmp_path, "second")
        try:
            wait_until(lambda: _all_done(engine), 90, every=0.2)
        finally:
            stop_workers(second)
    finally:
        stop_workers(first)
    with Session(engine) as session:
        rows = session.exec(select(WebhookDelivery)).all()
    expected = {r.event_id for r in rows}
    verified = receiver.verified_events(secret, tolerance=600)
    arrived = Counter(event["id"] for event in verified)
    assert len(verified) == len(receiver.received())  # every post carried a valid signature
    assert set(arrived) == expected
    assert sum(arrived.values()) - len(arrived) <= 1  # only the one on the wire at the kill may come twice
    kinds = Counter(event["type"] for event in verified)
    assert {"outcome.recorded", "outcome.changed", "email.scheduled", "email.sent", "email.canceled",
            "debrief.submitted", "customer.unsubscribed"} <= set(kinds)
    assert len(smtp.caught) >= 2


def _all_done(engine) -> bool:
    with Session(engine) as session:
        rows = session.exec(select(WebhookDelivery.status)).all()
        sent = session.exec(select(OutboundEmail).where(OutboundEmail.status == "sent")).all()
    return bool(rows) and len(sent) >= 2 and all(s == "delivered" for s in rows)
