"""The draining sender: one job sends every due email, composed ahead, each at its moment, over several SMTP
connections; opt-outs stop an email up to its moment; an interrupted drain gives back what it had not sent.

Real Redis + RQ, real SMTP (aiosmtpd), the test database (SQLite, or PostgreSQL in the second run).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry
from sqlmodel import Session

from service import context
from service.models import OutboundEmail
from service.outbox import schedule, sender
from service.outbox.status import suppress
from tests.integration.test_outbox import _due_rows, caught_ids, rows, work
from tests.integration.test_worker import stop_workers, worker_process
from tests.mail import wait_until


def test_one_job_sends_every_due_email_and_takes_the_other_jobs_off_redis(engine, settings, reps, redis, smtp):
    ids = _due_rows(engine, settings, 120)
    for outbound_id in ids:
        schedule.enqueue_send(context.current(), outbound_id, datetime.now(UTC))
    queue = context.current().queue("outbox")
    work(redis)
    assert {r.status for r in rows(engine)} == {"sent"}
    assert Counter(caught_ids(smtp)) == Counter({r.message_id: 1 for r in rows(engine)})
    assert len(queue) == 0 and len(ScheduledJobRegistry(queue=queue)) == 0
    assert len(FinishedJobRegistry(queue=queue)) < 10  # the first job drained nearly all of them


@pytest.mark.slow
def test_emails_due_together_are_composed_ahead_and_none_leaves_early(engine, settings, reps, redis, smtp):
    due = datetime.now(UTC) + timedelta(seconds=2)
    ids = _due_rows(engine, settings, 60, when=due)
    for outbound_id in ids:
        schedule.enqueue_send(context.current(), outbound_id, due)
    work(redis)  # the jobs start LEAD early: they claim, compose, and wait for the second
    sent = rows(engine)
    assert {r.status for r in sent} == {"sent"} and len(smtp.caught) == 60
    assert all(r.sent_at >= due for r in sent)
    assert all(r.attempts == 1 for r in sent)


@pytest.mark.slow
def test_an_opt_out_that_arrives_while_an_email_waits_for_its_moment_stops_it(engine, settings, reps, redis, smtp):
    due = datetime.now(UTC) + timedelta(seconds=2)
    first, second = _due_rows(engine, settings, 2, when=due)
    drained = []
    drainer = threading.Thread(target=lambda: drained.append(sender.drain(context.current())))
    drainer.start()
    wait_until(lambda: {r.status for r in rows(engine)} == {"sending"}, 10)  # claimed and composed
    with Session(engine) as session:
        suppress(session, "c0@client.example", "unsubscribe link")
        session.commit()
    drainer.join(30)
    assert drained == [Counter({"sent": 1, "canceled": 1})]
    assert [c.recipients for c in smtp.caught] == [["c1@client.example"]]
    assert (rows(engine, id=first)[0].status, rows(engine, id=first)[0].canceled_reason) == ("canceled", "suppressed")


@pytest.mark.slow
def test_an_interrupted_drain_gives_back_what_it_had_not_sent_and_another_job_sends_it_once(
        engine, settings, reps, redis, smtp):
    due = datetime.now(UTC) + timedelta(seconds=3)
    ids = _due_rows(engine, settings, 5, when=due)
    # RQ's job timeout interrupts the drain while its emails wait for their moment. Their own jobs were never
    # queued: only the job the drain leaves for what it gave back can send them.
    queue = context.current().queue("outbox")
    queue.enqueue(schedule.SEND_JOB, ids[0], job_id=schedule.job_id(ids[0]), job_timeout=1)
    work(redis)
    assert FailedJobRegistry(queue=queue).get_job_ids() == [schedule.job_id(ids[0])]  # interrupted, indeed
    assert FinishedJobRegistry(queue=queue).get_job_ids() == [f"handback-{ids[0]}"]
    sent = rows(engine)
    assert [(r.status, r.attempts) for r in sent] == [("sent", 1)] * 5  # the interrupted claim is not a try
    assert all(r.sent_at >= due for r in sent)
    assert Counter(caught_ids(smtp)) == Counter({r.message_id: 1 for r in sent})


@pytest.mark.slow
def test_a_stop_wakes_a_drain_and_a_waiting_job_and_both_give_back_what_they_held(engine, settings, reps, redis,
                                                                                 smtp):
    """stop_sending (the worker's SIGTERM) ends a drain whose emails wait for their moment, and a job waiting to
    start: nothing is sent, the rows are scheduled again, not counted as tries, and jobs elsewhere take them."""
    services, queue = context.current(), context.current().queue("outbox")
    soon = datetime.now(UTC) + timedelta(seconds=3)
    *claimed, later = _due_rows(engine, settings, 5, when=soon)
    with Session(engine) as session:  # one row due too late for the drain: its job waits to start
        session.get(OutboundEmail, later).due_at = datetime.now(UTC) + timedelta(seconds=14)
        session.commit()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(sender.drain(services))),
               threading.Thread(target=lambda: results.append(sender.send_outbound(services, later)))]
    try:
        threads[0].start()
        wait_until(lambda: [r.status for r in rows(engine) if r.id in claimed] == ["sending"] * 4, 10)
        threads[1].start()
        time.sleep(0.2)  # the job is in its wait (9 s to go) by now; the stop must end it either way
        sender.stop_sending()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        sender._stopping.clear()
    assert Counter({"released": 4}) in results and "stopping: handed back" in results
    assert smtp.caught == []
    assert [(r.status, r.attempts) for r in rows(engine)] == [("scheduled", 0)] * 5
    assert queue.job_ids == [f"handback-{claimed[0]}"]  # for now, straight on the queue
    assert len(ScheduledJobRegistry(queue=queue)) == 1  # the waiting job's row: woken when it would have been
    work(redis)  # the next worker: the handback job sends the four at their moment
    assert sorted(c.recipients[0] for c in smtp.caught) == [f"c{n}@client.example" for n in range(4)]


def test_an_email_already_due_does_not_wait_behind_one_composed_ahead_for_a_later_moment():
    """The sender threads take emails by their moment, not in the order handed over: a revived or given-back
    email, claimed after others composed ahead, goes as soon as a thread is free (it waited ~3 s after each kill)."""
    senders, order, stop = sender.Senders(1), [], threading.Event()
    now = datetime.now(UTC)
    later = senders.submit(now + timedelta(seconds=0.5), False, stop, order.append, "composed ahead")
    time.sleep(0.1)  # its thread waits for that moment by now (if not, it sees both and takes the first anyway)
    due = senders.submit(now, False, stop, order.append, "already due")
    due.result(5), later.result(5)
    assert order == ["already due", "composed ahead"]


def test_a_550_for_one_email_of_a_customer_cancels_the_next_one_in_the_same_batch(
        engine, settings, reps, redis, smtp):
    first, second = _due_rows(engine, settings, 2)
    with Session(engine) as session:  # both rows to the same customer
        row = session.get(OutboundEmail, second)
        row.to_address, row.customer_id = "c0@client.example", session.get(OutboundEmail, first).customer_id
        session.commit()
    context.configure(settings.with_overrides(smtp_connections=1))
    smtp.script("c0@client.example", ["550 5.1.1 no such user"])
    sender.drain(context.current())
    statuses = {r.id: (r.status, r.canceled_reason) for r in rows(engine) if r.id in (first, second)}
    assert statuses == {first: ("failed", None), second: ("canceled", "undeliverable")}


@pytest.mark.slow
def test_three_worker_processes_draining_at_once_send_each_email_once(engine, settings, reps, redis, smtp, tmp_path):
    due = datetime.now(UTC) + timedelta(seconds=6)
    ids = _due_rows(engine, settings, 300, when=due)
    for outbound_id in ids:
        schedule.enqueue_send(context.current(), outbound_id, due)
    workers = [worker_process(settings, tmp_path, f"worker{n}") for n in range(3)]
    try:
        wait_until(lambda: all(r.status == "sent" for r in rows(engine)), 120)
    finally:
        exits = stop_workers(*workers)  # a failure above stays the test's failure
    assert exits == [0, 0, 0]  # nothing in flight: each stops cleanly, well before `keepwarm run` would kill it
    delivered = Counter(caught_ids(smtp))
    assert delivered == Counter({r.message_id: 1 for r in rows(engine)})
    assert all(r.sent_at >= due for r in rows(engine))


def test_a_live_worker_renews_the_lease_on_what_it_holds_so_nobody_revives_it(engine, settings, reps, redis, smtp):
    ids = _due_rows(engine, settings, 3)
    held = sender.claim(context.current(), until=datetime.now(UTC))
    assert sorted(held) == sorted(ids)
    with Session(engine) as session:  # as if the claim were old
        for outbound_id in ids:
            session.get(OutboundEmail, outbound_id).updated_at = datetime.now(UTC) - timedelta(hours=1)
        session.commit()
    assert sender.renew_leases(context.current()) >= 3
    assert schedule.revive_abandoned(context.current()) == set()
    assert {r.status for r in rows(engine)} == {"sending"}
    sender._release(context.current(), ids)
    assert {(r.status, r.attempts) for r in rows(engine)} == {("scheduled", 0)}


@pytest.mark.slow
def test_a_backlog_is_shared_a_worker_holds_only_a_few_batches_of_it(engine, settings, reps, redis, smtp):
    """Emails already due are claimed a few batches at a time, so a second worker (here a second drain) takes
    its share instead of idling while the first holds the whole backlog."""
    ids = _due_rows(engine, settings, 500, when=datetime.now(UTC) - timedelta(minutes=5))
    # ~100 sends a second: the first drain alone needs seconds to claim the rest, however slow the second starts.
    smtp.handler.delay_after_data = 0.02
    tallies: list[Counter] = [Counter(), Counter()]
    drains = [threading.Thread(target=lambda n=n: tallies.__setitem__(n, sender.drain(context.current())))
              for n in range(2)]
    held: list[int] = []
    try:
        drains[0].start()
        wait_until(lambda: any(r.status == "sent" for r in rows(engine)), 10)
        drains[1].start()
        while any(d.is_alive() for d in drains):
            held.append(sum(1 for r in rows(engine) if r.status == "sending"))
            time.sleep(0.02)
    finally:
        smtp.handler.delay_after_data = 0.0
        for drain in drains:
            drain.join(30)
    assert {r.status for r in rows(engine)} == {"sent"} and len(smtp.caught) == len(ids)
    assert [t["sent"] > 0 for t in tallies] == [True, True]
    assert max(held) <= 2 * (sender.BACKLOG_AHEAD + sender.CLAIM_BATCH)  # two drains, a batch past the cap each


def test_enqueue_sends_queues_many_at_once_each_as_enqueue_send_would(settings, redis):
    """Past chunk boundaries: the overdue go straight on the queue, the rest wait in the schedule until LEAD early."""
    services, now = context.current(), datetime.now(UTC).replace(microsecond=0)
    sends = [(n, now - timedelta(minutes=1) if n % 2 else now + timedelta(hours=1))
             for n in range(1, schedule.ENQUEUE_CHUNK + 4)]
    schedule.enqueue_sends(services, sends)
    queue = services.queue("outbox")
    scheduled = ScheduledJobRegistry(queue=queue)
    assert sorted(queue.job_ids) == sorted(schedule.job_id(n) for n, _ in sends if n % 2)
    assert sorted(scheduled.get_job_ids()) == sorted(schedule.job_id(n) for n, _ in sends if not n % 2)
    assert scheduled.get_scheduled_time(schedule.job_id(2)) == now + timedelta(hours=1) - schedule.LEAD


def test_a_sender_thread_that_fails_before_the_relay_loses_nothing_and_holds_nothing(engine, settings, reps, redis,
                                                                                       smtp, monkeypatch):
    """A database blip in the last opt-out look (raised in the sender thread, not returned as a verdict) is one
    email retried later; the emails after it are sent and recorded, and nothing stays held by the worker (before,
    the drain stopped recording at that email: the rest stayed `sending` under a lease renewed for ever)."""
    from sqlalchemy.exc import OperationalError

    ids = _due_rows(engine, settings, 6)
    real = sender.OptOuts.stopped

    def blip(self, address):
        if address == "c2@client.example":
            raise OperationalError("SELECT", {}, Exception("the database went away"))
        return real(self, address)

    monkeypatch.setattr(sender.OptOuts, "stopped", blip)
    tally = sender.drain(context.current())
    by_id = {r.id: r for r in rows(engine)}
    assert tally["sent"] == 5 and sorted(c.recipients[0] for c in smtp.caught) == \
        [f"c{n}@client.example" for n in (0, 1, 3, 4, 5)]
    assert {by_id[i].status for i in ids if by_id[i].to_address != "c2@client.example"} == {"sent"}
    failed = next(r for r in by_id.values() if r.to_address == "c2@client.example")
    assert failed.status == "scheduled" and failed.due_at > datetime.now(UTC)  # retried later, like a 4xx
    assert not sender._held
