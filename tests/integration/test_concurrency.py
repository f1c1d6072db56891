"""Several workers and pollers against one database and one Redis: one poller per mailbox, nothing sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from sqlmodel import Session, select

from service.intake.lock import PollerLock
from service.models import InboundMessage, OutboundEmail
from service.pipeline.polling import poller
from tests.mail import recap, wait_until


def _env(settings, tmp_path, imap_url: str) -> dict:
    return {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url, "KEEPWARM_REDIS_URL": settings.redis_url,
            "KEEPWARM_SMTP_URL": settings.smtp_url, "KEEPWARM_IMAP_URL": imap_url,
            "KEEPWARM_INTAKE_ADDRESS": settings.intake_address, "KEEPWARM_INTERNAL_DOMAINS": "acme.example",
            "KEEPWARM_SECRET_KEY": "test-secret-0123456789abcdef", "KEEPWARM_INSTANCE_DIR": str(tmp_path),
            "KEEPWARM_POLL_INTERVAL": "2", "KEEPWARM_READ_WORKERS": "1"}


def _start(role: str, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.cli", role], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_four_workers_and_two_pollers_read_everything_once_and_send_everything_once(
        imap, settings, engine, reps, redis, smtp, tmp_path):
    count = 60
    for n in range(count):
        imap.append("INBOX", recap(n, body=f"Lost for now, no budget until March (#{n}).\n\nTom"))
    env = _env(settings, tmp_path, settings.imap_url)
    with open(tmp_path / "processes.log", "w") as log:
        processes = [_start("poll", env, log) for _ in range(2)] + [_start("worker", env, log) for _ in range(4)]
        try:
            wait_until(lambda: _summaries_sent(engine) == count, 120)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                process.wait(30)
    with Session(engine) as session:
        inbound = list(session.exec(select(InboundMessage)))
    assert Counter(r.message_id for r in inbound) == Counter(f"<recap-{n}@mail.acme.example>" for n in range(count))
    summaries = [c for c in smtp.caught if c.recipients == ["tom.baker@acme.example"]]
    delivered = Counter(c.message["Message-ID"] for c in summaries)
    assert len(delivered) == count and set(delivered.values()) == {1}


def _summaries_sent(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboundEmail.id).where(OutboundEmail.kind == "rep_summary",
                                                               OutboundEmail.status == "sent")).all())


def test_each_mailbox_has_its_own_poller_lock(settings, engine, redis, dovecot):
    first = poller(settings.with_overrides(imap_url=dovecot.url("intake390@acme.example")), engine)
    second = poller(settings.with_overrides(imap_url=dovecot.url("intake391@acme.example")), engine)
    locks = [PollerLock(redis, m.key) for m in (first, second)]
    rival = PollerLock(redis, first.key)
    assert all(lock.acquire_or_extend() for lock in locks)  # two teams' mailboxes poll side by side
    assert not rival.acquire_or_extend()  # a second poller of the same mailbox waits

