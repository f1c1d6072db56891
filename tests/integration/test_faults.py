"""Riding out faults: the poller outlives a Redis and a database restart, `keepwarm run` outlives a Redis restart
with every child still up, and its runner starts a killed child again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Worker
from sqlmodel import Session, select

from service import context
from service.intake.imap import PROCESSED, Mailbox
from service.intake.lock import PollerLock
from service.models import InboundMessage
from service.outbox import schedule
from service.pipeline.polling import poller as make_poller
from service.run.devstack import RedisServer, free_port
from service.run.devstack.servers import dovecot_binary
from service.run.worker import LEASE_EVERY
from tests.conftest import DATABASE
from tests.integration.test_outbox import _due_rows, caught_ids
from tests.integration.test_outbox import rows as outbox_rows
from tests.integration.test_run import _child_env, _healthz, _processes_mentioning
from tests.integration.test_worker import worker_process
from tests.mail import recap, wait_until


def _filed(engine) -> list[str]:
    with Session(engine) as session:
        return [r.message_id for r in session.exec(select(InboundMessage).order_by(InboundMessage.id))
                if r.status == "processed" and r.folder == PROCESSED]


def _answers(engine) -> bool:
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT 1")).scalar() == 1
    except sa.exc.OperationalError:
        return False


class _Poller:
    """Mailbox.run in a thread, as `keepwarm poll` runs it."""

    def __init__(self, mailbox: Mailbox):
        self.mailbox, self.stop = mailbox, threading.Event()
        self.thread = threading.Thread(target=mailbox.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_until(self.idling, 30)
        return self

    def idling(self) -> bool:
        client = self.mailbox.client
        return client is not None and client._idle_tag is not None

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def _stop_fast(postgres) -> None:
    """PostgreSQL's fast shutdown (SIGINT): sessions are ended, the cluster stops cleanly."""
    os.killpg(postgres.process.pid, signal.SIGINT)
    postgres.process.wait(30)
    postgres.process = None
    wait_until(lambda: not (postgres.folder / "data" / "postmaster.pid").exists(), 30)


def _restart(server, port: int) -> None:
    server.port = port  # the same address, as after a real restart
    server.start()


@pytest.mark.slow
def test_the_poller_rides_out_a_redis_restart(imap, engine, settings, reps, tmp_path, caplog):
    redis = RedisServer(tmp_path / "redis").start()
    lock = PollerLock(Redis.from_url(redis.url), "redis-restart")
    mailbox = make_poller(settings.with_overrides(poll_interval=120), engine, lock=lock)
    try:
        with _Poller(mailbox) as poller:
            port = redis.port
            redis.kill()
            imap.append("INBOX", recap(1))  # wakes the poller, which finds Redis (its lock) gone
            wait_until(lambda: "Redis does not answer" in caplog.text, 30)
            _restart(redis, port)
            wait_until(lambda: _filed(engine) == ["<recap-1@mail.acme.example>"], 60)
            wait_until(poller.idling, 30)
            imap.append("INBOX", recap(2))  # delivered after Redis is back
            wait_until(lambda: len(_filed(engine)) == 2, 30)
            assert poller.thread.is_alive()
        assert not poller.thread.is_alive()  # and it still stops when asked
    finally:
        redis.stop()


@pytest.mark.slow
@pytest.mark.skipif(DATABASE != "postgresql", reason="a database server to restart: PostgreSQL only")
def test_the_poller_rides_out_a_database_restart(imap, engine, settings, reps, postgres, caplog):
    try:
        with _Poller(make_poller(settings.with_overrides(poll_interval=120), engine)) as poller:
            _stop_fast(postgres)  # what `systemctl restart postgresql` does first: every connection is cut
            imap.append("INBOX", recap(1))  # wakes the poller, which finds the database gone
            wait_until(lambda: "the database does not answer" in caplog.text, 30)
            _restart(postgres, postgres.port)
            wait_until(lambda: _answers(engine), 30)  # the port opens before PostgreSQL takes queries
            wait_until(lambda: _filed(engine) == ["<recap-1@mail.acme.example>"], 60)
            wait_until(poller.idling, 30)
            imap.append("INBOX", recap(2))
            wait_until(lambda: len(_filed(engine)) == 2, 30)
            assert poller.thread.is_alive()
    finally:
        if postgres.process is None:  # the cluster serves the rest of the session
            _restart(postgres, postgres.port)


@pytest.mark.slow
@pytest.mark.skipif(DATABASE != "postgresql", reason="a database server to restart: PostgreSQL only")
def test_the_worker_rides_out_a_database_restart(engine, settings, reps, redis, smtp, postgres, tmp_path):
    worker = worker_process(settings, tmp_path)
    try:
        wait_until(lambda: Worker.all(connection=redis), 30)
        _stop_fast(postgres)
        time.sleep(LEASE_EVERY + 1)  # its lease and reconcile rounds meet the database gone
        _restart(postgres, postgres.port)
        wait_until(lambda: _answers(engine), 30)
        [outbound_id] = _due_rows(engine, settings, 1)
        schedule.enqueue_send(context.current(), outbound_id, datetime.now(UTC))
        wait_until(lambda: outbox_rows(engine, id=outbound_id)[0].status == "sent", 60)
        assert worker.poll() is None and caught_ids(smtp) == [outbox_rows(engine, id=outbound_id)[0].message_id]
    finally:
        if postgres.process is None:
            _restart(postgres, postgres.port)
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(30) == 0


@pytest.mark.slow
def test_a_worker_rebuilds_the_queue_at_once_when_redis_comes_back_empty(engine, settings, reps, smtp, tmp_path):
    """A Redis restart loses every queued job: the workers notice the new server (its run id) and reconcile within
    seconds, instead of leaving the emails due meanwhile to the next minute's round (issue: soak lateness)."""
    server = RedisServer(tmp_path / "redis").start()
    worker = worker_process(settings, tmp_path, redis_url=server.url)
    try:
        wait_until(lambda: Worker.all(connection=Redis.from_url(server.url)), 30)
        context.configure(settings.with_overrides(redis_url=server.url))
        due = datetime.now(UTC) + timedelta(seconds=6)
        ids = _due_rows(engine, settings, 3, when=due)
        schedule.enqueue_sends(context.current(), [(i, due) for i in ids])
        port = server.port
        server.kill()  # the queued jobs go with it (no persistence, as most cache-only Redis setups)
        _restart(server, port)
        wait_until(lambda: {r.status for r in outbox_rows(engine)} == {"sent"}, 30)  # the minute's round: later
        log = (tmp_path / "worker.log").read_text()
        assert "Redis restarted (a new server run): rebuilding the queue from the database now" in log
        assert sorted(caught_ids(smtp)) == sorted(r.message_id for r in outbox_rows(engine))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        server.stop()


# -- keepwarm run -----------------------------------------------------------------------------------------------
class _Run:
    """`keepwarm run` in a folder of its own, with the environment `env_extra` adds."""

    def __init__(self, prefix: str, **env_extra: str):
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))  # see the dovecot fixture: not under pytest's temp root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")}
        self.env.update(KEEPWARM_INSTANCE_DIR=str(self.folder), KEEPWARM_POLL_INTERVAL="30", **env_extra)
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "service.cli", "run", "--port", str(self.port)],
                                        env=self.env, cwd=self.folder, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.output = ""

    def __enter__(self):
        wait_until(lambda: self._alive() and _healthz(self.port) == 200, 90, every=0.3)
        wait_until(lambda: set(self.children()) == {"web", "worker", "poll"}, 30)
        return self

    def _alive(self) -> bool:
        assert self.process.poll() is None, self.process.stdout.read()
        return True

    def children(self) -> dict[str, int]:
        """The pid of each role (web, worker, poll) among the runner's direct children."""
        found = {}
        for proc in Path("/proc").iterdir():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if parent == self.process.pid and b"service.cli" in argv and len(argv) > 3:
                found[argv[argv.index(b"service.cli") + 1].decode()] = int(proc.name)
        return found

    def demo(self, customer: str) -> None:
        """`keepwarm demo`: a recap appended to the run's own Dovecot mailbox."""
        done = subprocess.run([sys.executable, "-m", "service.cli", "demo", "--customer", customer],
                              env=_child_env(self.folder, self.env), cwd=self.folder, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def inbox(self) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "service.cli", "inbox", "list", "--json"], env=self.env,
                              cwd=self.folder, capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout or "[]")

    def processed(self) -> int:
        return sum(row["status"] == "processed" for row in self.inbox())

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        self.output, _ = self.process.communicate(timeout=60)
        print(self.output)
        leftovers = _processes_mentioning(str(self.folder))
        shutil.rmtree(self.folder, ignore_errors=True)
        assert self.process.returncode == 0 and leftovers == []


@pytest.mark.slow
@pytest.mark.skipif(dovecot_binary() is None, reason="dovecot is not installed")
def test_keepwarm_run_rides_out_a_redis_restart_with_every_child_still_up(tmp_path):
    redis = RedisServer(tmp_path / "redis", persistent=True).start()  # persistent, as `keepwarm run` starts it
    try:
        with _Run("kw-run-redis-", KEEPWARM_REDIS_URL=redis.url) as run:
            run.demo("maria.rossi@customer.example")
            wait_until(lambda: run.processed() == 1, 60, every=0.5)
            before = run.children()
            port = redis.port
            redis.kill()
            time.sleep(3)  # every child loses Redis mid-work or mid-wait
            _restart(redis, port)
            wait_until(lambda: _healthz(run.port) == 200, 30, every=0.3)
            run.demo("luca.verdi@customer.example")  # delivered after Redis is back
            wait_until(lambda: run.processed() == 2, 60, every=0.5)
            assert run.children() == before  # web, worker and poller rode it out: none died and was restarted
        assert "stopped unexpectedly" not in run.output
    finally:
        redis.stop()


@pytest.mark.slow
@pytest.mark.skipif(dovecot_binary() is None, reason="dovecot is not installed")
def test_keepwarm_run_starts_a_killed_worker_again():
    with _Run("kw-run-kill-") as run:
        before = run.children()
        os.kill(before["worker"], signal.SIGKILL)
        wait_until(lambda: run.children().get("worker") not in (None, before["worker"]), 30)
        after = run.children()
        assert (after["web"], after["poll"]) == (before["web"], before["poll"])
        assert _healthz(run.port) == 200
        run.demo("maria.rossi@customer.example")  # the whole service still works
        wait_until(lambda: run.processed() == 1, 60, every=0.5)
    assert "worker stopped unexpectedly (exit code -9); starting it again in 1 s" in run.output
