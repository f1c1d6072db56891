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

from service import context
from service.outbox import schedule, sender
from service.run.devstack import RedisServer
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
    started = time.monotonic()
    assert _stop(worker) == 0
    assert time.monotonic() - started < 15


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
