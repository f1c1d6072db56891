"""Sending throughput and punctuality against a local aiosmtpd.

Prints: raw smtplib on one connection (msgs/s); Keepwarm's worker sending 2,000 due emails (msgs/s) and the ratio
(target >= 0.7); lateness p50/p99/max of 1,000 emails due in the same second (target p99 <= 2 s, none early).
Usage: .venv/bin/python bench/send.py [N_THROUGHPUT] [N_LATENESS]. Asserts nothing.
"""

from __future__ import annotations

import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from redis import Redis
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).parents[1]))

from service import context  # noqa: E402
from service.db import make_engine, upgrade  # noqa: E402
from service.devstack import MailCatcher, RedisServer  # noqa: E402
from service.models import Customer, OutboundEmail, Rep  # noqa: E402
from service.outbox.schedule import enqueue_send  # noqa: E402
from service.outcomes import new_outbound  # noqa: E402
from service.settings import load_settings  # noqa: E402


def raw_rate(catcher: MailCatcher, n: int) -> float:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@acme.example", "b@client.example", "raw"
    message.set_content("Thank you for your time today.\n" * 10)
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", catcher.port) as connection:
        for _ in range(n):
            connection.send_message(message)
    return n / (time.perf_counter() - started)


def make_rows(engine, settings, n: int, due: datetime, offset: int) -> list[int]:
    with Session(engine) as session:
        rep = session.exec(select(Rep)).first()
        if rep is None:
            rep = Rep(email="tom.baker@acme.example", name="Tom Baker", timezone="Europe/London")
            session.add(rep)
            session.flush()
        rows = []
        for i in range(offset, offset + n):
            customer = Customer(email=f"c{i}@client{i % 50}.example", name=f"Customer {i}")
            session.add(customer)
            session.flush()
            rows.append(new_outbound(settings, kind="thank_you", variant="lost", rep=rep, to_address=customer.email,
                                     to_name=customer.name, due_at=due, outcome_id=None, language="en",
                                     customer_id=customer.id))
        session.add_all(rows)
        session.commit()
        return [r.id for r in rows]


def run_worker(settings, until_sent: int, engine, timeout: float = 900) -> None:
    """`keepwarm worker` as a separate process (as deployed), stopped once everything is sent."""
    env = {**os.environ, **{f"KEEPWARM_{k.upper()}": str(getattr(settings, k)) for k in
                            ("database_url", "redis_url", "smtp_url", "secret_key", "intake_address", "instance_dir")}}
    worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(Path(settings.instance_dir) / "worker.log", "a"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.returncode}): see {settings.instance_dir}/worker.log")
            with Session(engine) as session:
                if len(session.exec(select(OutboundEmail.id).where(OutboundEmail.status == "sent")).all()) >= until_sent:
                    return
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def main(n_rate: int, n_late: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kw-send-"))
    with RedisServer(folder / "redis") as redis_server, MailCatcher() as catcher:
        settings = load_settings({"database_url": f"sqlite:///{folder}/send.db", "instance_dir": folder,
                                  "redis_url": redis_server.url, "smtp_url": catcher.url, "secret_key": "bench-secret-0123456789abcdef",
                                  "intake_address": "followup@acme.example"}, environ={}, env_file=None)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        services = context.configure(settings)
        raw = raw_rate(catcher, n_rate)
        print(f"raw smtplib, one connection:          {raw:8.1f} msgs/s ({n_rate} messages)")
        catcher.clear()
        ids = make_rows(engine, settings, n_rate, datetime.now(UTC), 0)
        for outbound_id in ids:
            enqueue_send(services, outbound_id, datetime.now(UTC) - timedelta(seconds=1))
        started = time.perf_counter()
        run_worker(settings, n_rate, engine)
        rate = n_rate / (time.perf_counter() - started)
        print(f"Keepwarm worker, {n_rate} due emails:     {rate:8.1f} msgs/s")
        print(f"ratio worker / raw = {rate / raw:.2f} (target >= 0.7)")
        measure_lateness(services, engine, settings, catcher, n_late, offset=n_rate)
        Redis.from_url(redis_server.url).close()


def measure_lateness(services, engine, settings, catcher, n: int, offset: int) -> None:
    due = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    ids = make_rows(engine, settings, n, due, offset)
    for outbound_id in ids:
        enqueue_send(services, outbound_id, due)
    run_worker(settings, offset + n, engine, timeout=900)
    with Session(engine) as session:
        sent = session.exec(select(OutboundEmail.updated_at).where(OutboundEmail.id.in_(ids))).all()
    lateness = sorted((s - due).total_seconds() for s in sent)
    p99 = lateness[int(len(lateness) * 0.99) - 1]
    print(f"lateness of {n} emails due in the same second: p50 {statistics.median(lateness):.2f}s, "
          f"p99 {p99:.2f}s, max {lateness[-1]:.2f}s, early {sum(1 for x in lateness if x < 0)} (target p99 <= 2s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
