"""`keepwarm worker` as deployed (its own process): it outlives a Redis restart, stops cleanly on SIGTERM even while
Redis is away, and its leases let another worker take over what a dead one held, soon and once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Worker
from rq.scheduler import RQScheduler
from sqlmodel import Session

from service import context
from service.models import OutboundEmail
from service.outbox import schedule, sender
from service.run.devstack import RedisServer
from service.run.worker import move_overdue_jobs
from tests.integration.test_outbox import _due_rows, caught_ids, rows
from tests.mail import wait_until

# Well under STALE_SENDING (45 s): what is sent within it was not waiting for a lease to lapse.
STALE_SENDING_MARGIN = 30
# What `keepwarm run` gives its children between SIGTERM and SIGKILL (supervisor._stop_children): a worker with
# nothing in flight stops well within it.
STOP_WITHIN = 15


def worker_process(settings, tmp_path, name: str = "worker", *, redis_url: str | None = None,
                   worker_id: str = "") -> subprocess.Popen:
    """`keepwarm worker` in a process (and session) of its own, logging to tmp_path/<name>.log."""
    env = {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url,
           "KEEPWARM_REDIS_URL": redis_url or settings.redis_url,
           "KEEPWARM_SMTP_URL": settings.smtp_url, "KEEPWARM_INTAKE_ADDRESS": settings.intake_address,
           "KEEPWARM_SECRET_KEY": "test-secret-0123456789abcdef", "KEEPWARM_INSTANCE_DIR": str(tmp_path),
           "KEEPWARM_WORKER_ID": worker_id, "KEEPWARM_SMTP_CONNECTIONS": str(settings.smtp_connections)}
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, start_new_session=True,
                            stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def stop_workers(*processes: subprocess.Popen, within: float = STOP_WITHIN) -> list[int | None]:
    """SIGTERM each process's group at once, then their exit codes; one still running `within` seconds later is
    killed -9 and counted None. Never raises, so a `finally` calling it leaves the test's own failure visible."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline, codes = time.monotonic() + within, []
    for process in processes:
        try:
            codes.append(process.wait(max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            codes.append(None)
    return codes


def _stop(process: subprocess.Popen) -> int | None:
    return stop_workers(process)[0]


def _kill_mid_send(engine, settings, smtp, tmp_path, count: int, worker_id: str) -> tuple[list[int], list[str]]:
    """A worker named `worker_id` claims `count` due rows and is killed -9 while each of its SMTP connections has an
    email on the wire: the server has stored it but holds its answer, so the worker never learns it went. Returns
    the rows' ids and the Message-IDs that were on the wire."""
    ids = _due_rows(engine, settings, count)
    schedule.enqueue_sends(context.current(), [(outbound_id, datetime.now(UTC)) for outbound_id in ids])
    with _answers_held(smtp):
        first = worker_process(settings, tmp_path, "first", worker_id=worker_id)
        wait_until(lambda: len(smtp.caught) == settings.smtp_connections, 30)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        on_the_wire = caught_ids(smtp)
    # No answer came back, so no connection could start a second email: one on the wire per connection.
    assert len(on_the_wire) == settings.smtp_connections == len(set(on_the_wire))
    return ids, on_the_wire


@contextlib.contextmanager
def _answers_held(smtp):
    """Inside, the mail catcher stores each message as usual but answers its DATA only once the block is left."""
    released = threading.Event()
    store = smtp.handler.handle_DATA

    async def store_then_hold(server, session, envelope):
        reply = await store(server, session, envelope)
        while not released.is_set():
            await asyncio.sleep(0.01)
        return reply

    smtp.handler.handle_DATA = store_then_hold  # read by each new SMTP session: set before the worker connects
    try:
        yield
    finally:
        released.set()
        del smtp.handler.handle_DATA


def _assert_only_the_wire_went_twice(engine, smtp, on_the_wire: list[str]) -> None:
    """Every email arrived; the ones that arrived twice are exactly those on the wire at the kill (at most one per
    SMTP connection, never one recorded as sent), each time with its own Message-ID, which receivers dedupe."""
    delivered = Counter(caught_ids(smtp))
    assert delivered == Counter({r.message_id: 1 for r in rows(engine)}) + Counter(on_the_wire)


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of this test's own, which it may kill and start again."""
    server = RedisServer(tmp_path / "redis").start()
    context.configure(settings.with_overrides(redis_url=server.url))
    yield server
    server.stop()


@pytest.mark.slow
def test_the_worker_outlives_a_redis_restart_and_goes_on_sending(engine, settings, reps, smtp, own_redis, tmp_path):
    worker = worker_process(settings, tmp_path, redis_url=own_redis.url)
    try:
        wait_until(lambda: Worker.all(connection=Redis.from_url(own_redis.url)), 30)
        port = own_redis.port
        own_redis.kill()
        time.sleep(3)  # the worker loses Redis mid-wait
        own_redis.port = port
        own_redis.start()
        [outbound_id] = _due_rows(engine, settings, 1)
        schedule.enqueue_send(context.current(), outbound_id, datetime.now(UTC))
        wait_until(lambda: rows(engine, id=outbound_id)[0].status == "sent", 60)
        assert worker.poll() is None
        assert caught_ids(smtp) == [rows(engine, id=outbound_id)[0].message_id]
    finally:
        code = _stop(worker)
    assert code == 0


@pytest.mark.slow
def test_sigterm_while_redis_is_away_stops_the_worker_cleanly(settings, engine, reps, smtp, own_redis, tmp_path):
    worker = worker_process(settings, tmp_path, redis_url=own_redis.url)
    wait_until(lambda: Worker.all(connection=Redis.from_url(own_redis.url)), 30)
    own_redis.kill()
    time.sleep(2)
    assert worker.poll() is None  # waiting for Redis, not dead
    assert _stop(worker) == 0  # exited by itself on SIGTERM (stop_workers kills -9 and says None after STOP_WITHIN)


@pytest.mark.slow
def test_a_worker_killed_mid_send_has_its_emails_taken_over_by_another_once_its_lease_lapses(
        engine, settings, reps, redis, smtp, tmp_path):
    ids, on_the_wire = _kill_mid_send(engine, settings, smtp, tmp_path, 20, "")  # host and pid: nobody else's name
    held = [r.id for r in rows(engine) if r.status == "sending"]
    assert len(held) == len(ids)  # the batch it had claimed, none recorded as sent
    # The lease thread of a live worker would have renewed them; nobody did: past STALE_SENDING they are revived.
    assert schedule.revive_abandoned(context.current(), now=datetime.now(UTC)) == set()  # not stale yet
    later = datetime.now(UTC) + schedule.STALE_SENDING + timedelta(seconds=1)
    assert schedule.revive_abandoned(context.current(), now=later) == set(held)
    second = worker_process(settings, tmp_path, "second")
    try:
        wait_until(lambda: all(r.status == "sent" for r in rows(engine)), 60)
    finally:
        code = _stop(second)
    assert code == 0
    _assert_only_the_wire_went_twice(engine, smtp, on_the_wire)


@pytest.mark.slow
def test_a_worker_started_again_under_its_name_sends_what_it_left_mid_send_without_waiting_for_the_lease(
        engine, settings, reps, redis, smtp, tmp_path):
    ids, on_the_wire = _kill_mid_send(engine, settings, smtp, tmp_path, 20, "worker-a")
    held = [r for r in rows(engine) if r.status == "sending"]
    assert len(held) == len(ids) and {r.held_by for r in held} == {"worker-a"}
    # Its lease is fresh (it would take STALE_SENDING to lapse), but the same name means the holder is gone.
    again = worker_process(settings, tmp_path, "again", worker_id="worker-a")
    try:
        wait_until(lambda: all(r.status == "sent" for r in rows(engine)), STALE_SENDING_MARGIN)
    finally:
        code = _stop(again)
    assert code == 0
    assert all("previous run (worker-a)" in (r.last_error or "") for r in rows(engine))
    _assert_only_the_wire_went_twice(engine, smtp, on_the_wire)


@pytest.mark.slow
def test_a_worker_stopped_mid_backlog_exits_soon_and_another_sends_what_it_gave_back(
        engine, settings, reps, redis, smtp, tmp_path):
    """SIGTERM while a drain has a backlog to go (here ~25 s of it): the worker stops claiming, lets what is on the
    wire finish, records it, gives back the rest and exits, well within what `keepwarm run` gives it. A second
    worker sends the rest at once, through the job the first left for it, not the reconciler's: each email once."""
    ids = _due_rows(engine, settings, 1000, when=datetime.now(UTC) - timedelta(minutes=1))
    schedule.enqueue_send(context.current(), ids[0], datetime.now(UTC))  # one job: the drain takes the backlog
    smtp.handler.delay_after_data = 0.05  # ~40 emails a second over two connections
    first = worker_process(settings, tmp_path, "first")
    try:
        wait_until(lambda: len(smtp.caught) >= 20, 60)
        os.killpg(first.pid, signal.SIGTERM)
        wait_until(lambda: first.poll() is not None, STOP_WITHIN)
    finally:
        code = _stop(first)
        smtp.handler.delay_after_data = 0.0
    assert code == 0
    left = rows(engine)
    assert not [r for r in left if r.status == "sending"]  # nothing left held: no lease to wait for
    given_back = [r for r in left if r.status == "scheduled"]
    assert given_back and all(r.attempts == 0 for r in given_back)
    second = worker_process(settings, tmp_path, "second")  # the reconciler's lock is the first's for a minute
    try:
        wait_until(lambda: all(r.status == "sent" for r in rows(engine)), STALE_SENDING_MARGIN)
    finally:
        second_code = _stop(second)
    assert second_code == 0
    assert Counter(caught_ids(smtp)) == Counter({r.message_id: 1 for r in rows(engine)})
    assert all(r.attempts == 1 for r in rows(engine))


@pytest.mark.slow
def test_a_scheduler_lock_left_by_a_killed_worker_does_not_hold_back_the_scheduled_sends(
        engine, settings, reps, redis, smtp, tmp_path):
    """A worker killed -9 leaves RQ's scheduler lock for 61 s, and RQ's other schedulers wait it out: the worker
    moves jobs past their time to the queue itself, so an email due meanwhile still goes within seconds."""
    redis.set(RQScheduler.get_locking_key("outbox"), "killed-worker-scheduler", ex=120)
    worker = worker_process(settings, tmp_path)
    try:
        wait_until(lambda: Worker.all(connection=redis), 30)
        [outbound_id] = _due_rows(engine, settings, 1, when=datetime.now(UTC) + schedule.LEAD + timedelta(seconds=1))
        schedule.enqueue_send(context.current(), outbound_id, rows(engine, id=outbound_id)[0].due_at)
        assert context.current().queue("outbox").scheduled_job_registry.get_job_ids() == [schedule.job_id(outbound_id)]
        wait_until(lambda: rows(engine, id=outbound_id)[0].status == "sent", STALE_SENDING_MARGIN)
    finally:
        code = _stop(worker)
    assert code == 0
    assert redis.get(RQScheduler.get_locking_key("outbox")) == b"killed-worker-scheduler"  # RQ never took over


def test_jobs_past_their_time_in_the_schedule_are_moved_to_their_queue(settings, redis):
    services = context.current()
    queue = services.queue("outbox")
    queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=10), schedule.SEND_JOB, 1, job_id=schedule.job_id(1))
    schedule.enqueue_send(services, 2, datetime.now(UTC) + timedelta(hours=1))
    assert queue.job_ids == []  # both wait for RQ's scheduler, which is not running
    scheduler = RQScheduler([queue], connection=redis)
    assert move_overdue_jobs(services, scheduler) == 1
    assert queue.job_ids == [schedule.job_id(1)]
    assert queue.scheduled_job_registry.get_job_ids() == [schedule.job_id(2)]
    assert move_overdue_jobs(services, scheduler) == 0


@pytest.mark.slow
def test_a_worker_killed_mid_send_is_known_dead_and_another_takes_its_emails_before_the_lease_lapses(
        engine, settings, reps, redis, smtp, tmp_path):
    ids, on_the_wire = _kill_mid_send(engine, settings, smtp, tmp_path, 20, "worker-a")
    assert {r.held_by for r in rows(engine) if r.status == "sending"} == {"worker-a"}
    # Another name: nothing of worker-a's is its own. worker-a announced itself and is gone from Redis's clients.
    other = worker_process(settings, tmp_path, "other", worker_id="worker-b")
    try:
        # known dead 25 s after the last lease renewal (0-10 s before the kill), so by 15-25 s after the kill
        wait_until(lambda: all(r.status == "sent" for r in rows(engine)), 40)
    finally:
        code = _stop(other)
    assert code == 0
    assert all("known dead (worker-a" in (r.last_error or "") for r in rows(engine))
    _assert_only_the_wire_went_twice(engine, smtp, on_the_wire)


def test_only_rows_of_an_announced_worker_gone_from_redis_are_revived_early(engine, settings, reps, redis,
                                                                           monkeypatch):
    """Dead: announced (in the holders' set) and no Redis connection under its name. A live worker, one that never
    announced itself (a burst worker), and a dead one whose lease is still fresh keep their rows."""
    monkeypatch.setattr(schedule, "REDIS_SETTLE", timedelta(0))  # the test's Redis may have just started
    monkeypatch.setattr(schedule, "_missing_since", {})
    _due_rows(engine, settings, 4)
    claimed = {}
    for name in ("dead", "alive", "burst", "fresh"):
        named = context.Services.with_engine(settings.with_overrides(worker_id=name), engine)
        claimed[name] = sender.claim(named, until=datetime.now(UTC), limit=1)
        sender._let_go(claimed[name])
    redis.sadd(schedule.HOLDERS_KEY, "dead", "alive", "fresh")
    alive = Redis.from_url(settings.redis_url, client_name=schedule.presence_name("alive"))
    alive.ping()
    try:
        with Session(engine) as session:  # every lease old enough but the fresh one's
            for name, won in claimed.items():
                age = timedelta(seconds=5 if name == "fresh" else 30)
                session.get(OutboundEmail, won[0]).updated_at = datetime.now(UTC) - age
            session.commit()
        # missing on one look is not enough (a presence connection reconnecting, a failover): on two, 3 s apart
        first_look_at = datetime.now(UTC) - timedelta(seconds=5)
        assert schedule.revive_dead_holders(context.current(), now=first_look_at) == set()
        assert schedule.revive_dead_holders(context.current()) == set(claimed["dead"])
    finally:
        alive.close()
    assert {r.held_by: r.status for r in rows(engine)} == {
        "dead": "scheduled", "alive": "sending", "burst": "sending", "fresh": "sending"}
    assert {m.decode() for m in redis.smembers(schedule.HOLDERS_KEY)} == {"alive", "fresh"}  # holding nothing: forgotten


def test_only_the_rows_held_under_a_workers_own_name_are_given_back_at_its_start(engine, settings, reps, redis):
    ids = _due_rows(engine, settings, 6)
    named = {name: context.Services.with_engine(settings.with_overrides(worker_id=name), engine)
             for name in ("worker-a", "worker-b")}
    won_a = sender.claim(named["worker-a"], until=datetime.now(UTC), limit=4)
    won_b = sender.claim(named["worker-b"], until=datetime.now(UTC), limit=4)
    sender._let_go(won_a + won_b)
    assert sorted(won_a + won_b) == sorted(ids)
    assert schedule.revive_own(named["worker-b"]) == set(won_b)
    assert {r.id: r.status for r in rows(engine)} == {**{i: "sending" for i in won_a}, **{i: "scheduled" for i in won_b}}
    assert schedule.revive_own(named["worker-b"]) == set()  # given back once
