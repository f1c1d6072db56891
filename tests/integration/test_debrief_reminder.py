"""The debrief reminder through the real worker and SMTP: sent once when nothing came in, never after a debrief."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service import context
from service.context import Services
from service.intake.store import store_raw
from service.models import OutboundEmail, Outcome
from service.outbox import sender
from service.outbox.actions import send_now
from service.pipeline.debrief import Answers, save_debrief
from service.pipeline.process import process_message
from service.run.worker import BoundedWorker
from tests.mail import recap

NOTE = ("Hi Jane,\n\nthanks for your time today. I'm afraid our demo did not convince you, and that's on me.\n\n"
        "Tom\n")


def work(redis) -> None:
    services = context.current()
    BoundedWorker([services.queue(q) for q in context.QUEUES], connection=redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING")


@pytest.fixture
def reminder(engine, settings, reps, redis, smtp) -> OutboundEmail:
    """The reminder planned for a loss on our side (read without queueing anything: tests send by hand)."""
    with Session(engine) as session:
        row = store_raw(session, recap(1, body=NOTE, date=datetime.now(UTC) - timedelta(hours=1)), mailbox="t")
        session.commit()
        inbound_id = row.id
    process_message(Services.with_engine(settings, engine), inbound_id)
    with Session(engine) as session:
        return session.exec(select(OutboundEmail).where(OutboundEmail.kind == "debrief_reminder")).one()


def _status(engine, row) -> tuple[str, str | None]:
    with Session(engine) as session:
        found = session.get(OutboundEmail, row.id)
        return found.status, found.canceled_reason


def test_without_a_debrief_the_reminder_goes_once_with_the_link(engine, reminder, redis, smtp):
    assert reminder.status == "scheduled" and reminder.due_at > datetime.now(UTC) + timedelta(days=2)
    send_now(context.current(), reminder.id)
    work(redis)
    [sent] = [c.message for c in smtp.caught if c.message["Message-ID"] == reminder.message_id]
    assert re.search(r"http://keepwarm\.test/debrief/\S+", sent.get_body(("plain",)).get_content())
    assert _status(engine, reminder) == ("sent", None)
    assert "nothing to do" in send_now(context.current(), reminder.id)  # one reminder, then silence


def test_saving_the_debrief_cancels_the_reminder(engine, settings, reminder):
    with Session(engine) as session:
        save_debrief(session, settings, session.get(Outcome, reminder.outcome_id),
                     Answers(ours=("unconvinced",), lesson="Shorter demo"))
        session.commit()
    assert _status(engine, reminder) == ("canceled", "debrief submitted")


@pytest.mark.xfail("reminder_moot" not in inspect.getsource(sender), strict=True,
                   reason="needs the one-line sender change (blocked_reason(...) or reminder_moot(...))")
def test_a_reminder_left_scheduled_is_never_sent_once_a_debrief_exists(engine, reminder, redis, smtp):
    with Session(engine) as session:  # e.g. requeued by hand after the debrief came in
        session.get(Outcome, reminder.outcome_id).debrief_submitted_at = datetime.now(UTC)
        session.commit()
    smtp.clear()
    send_now(context.current(), reminder.id)
    work(redis)  # sends whatever else is due too (the rep's summary), never the reminder
    assert reminder.message_id not in [c.message["Message-ID"] for c in smtp.caught]
    assert _status(engine, reminder) == ("canceled", "debrief submitted")
