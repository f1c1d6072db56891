"""Sending throughput and punctuality against a local aiosmtpd.

Prints: raw smtplib on one connection (msgs/s, a client process of its own sending one of our composed emails); Keepwarm's worker
(`keepwarm worker`, its own process, already running) sending 2,000 emails due at one moment (msgs/s from that moment
to the last one recorded as sent) and the ratio (target >= 0.7); lateness p50/p99/max of 1,000 emails due in the
same second (target p99 <= 2 s, none early); and, for honesty, 2,000 overdue emails (a backlog: nothing composed
ahead). The catcher (aiosmtpd) runs in this process for all of them.
With --limit=LIMITS (e.g. --limit=600/minute), a second run: a worker under KEEPWARM_RELAY_LIMITS sends N_THROUGHPUT
emails all due at once; prints the achieved rate against the limit and the most emails any window of the limit
held (target: within 5% of the limit, 0 over it).
Usage: .venv/bin/python bench/send.py [N_THROUGHPUT] [N_LATENESS] [--postgres] [--limit=LIMITS]. Asserts nothing.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis
from rq import Worker
from sqlmodel import Session, func, select

sys.path.insert(0, str(Path(__file__).parents[1]))

from service import context  # noqa: E402
from service.db import make_engine, upgrade  # noqa: E402
from service.models import Customer, OutboundEmail, Rep  # noqa: E402
from service.outbox.rows import new_outbound  # noqa: E402
from service.outbox.schedule import enqueue_sends  # noqa: E402
from service.run.devstack import MailCatcher, RedisServer  # noqa: E402
from service.run.devstack.servers import PostgresServer  # noqa: E402
from service.settings import load_settings  # noqa: E402

RAW_CLIENT = """
import smtplib, sys, time
data = open(sys.argv[3], "rb").read()
started = time.perf_counter()
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as connection:
    for _ in range(int(sys.argv[2])):
        connection.sendmail("followup@acme.example", ["c0@client0.example"], data)
print(int(sys.argv[2]) / (time.perf_counter() - started))
"""


def raw_rate(catcher: MailCatcher, n: int, sample: Path) -> float:
    """smtplib on one connection, in its own process (as the worker is), sending the bytes of one of our own
    composed thank-yous (text + HTML, ~2.5 KB) n times to the same catcher."""
    out = subprocess.run([sys.executable, "-c", RAW_CLIENT, str(catcher.port), str(n), str(sample)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def sample_message(engine, services, settings, folder: Path) -> Path:
    """One real thank-you as Keepwarm composes it (the row is then deleted)."""
    from service.outbox.sender import _compose

    [outbound_id] = make_rows(engine, settings, 1, datetime.now(UTC), 10**6)
    with Session(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        data = _compose(session, row, services, {}).data
        session.delete(row)
        session.commit()
    (folder / "sample.eml").write_bytes(data)
    return folder / "sample.eml"


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


def start_worker(settings, redis_url: str) -> subprocess.Popen:
    """`keepwarm worker` as a separate process (as deployed), waited for until RQ lists it."""
    env = {**os.environ, **{f"KEEPWARM_{k.upper()}": str(getattr(settings, k)) for k in
                            ("database_url", "redis_url", "smtp_url", "secret_key", "intake_address", "instance_dir",
                             "relay_limits")}}
    worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(Path(settings.instance_dir) / "worker.log", "a"))
    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while not Worker.all(connection=redis):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: see {settings.instance_dir}/worker.log")
        time.sleep(0.05)
    return worker


def wait_sent(engine, ids: list[int], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if session.exec(select(func.count()).where(OutboundEmail.id.in_(ids),
                                                       OutboundEmail.status == "sent")).one() >= len(ids):
                return
        time.sleep(0.05)
    raise RuntimeError("not everything was sent in time")


def main(n_rate: int, n_late: int, use_postgres: bool, limit: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kw-send-"))
    postgres = PostgresServer(folder / "pg").start() if use_postgres else None
    try:
        database_url = postgres.url() if postgres else f"sqlite:///{folder}/send.db"
        run(folder, n_rate, n_late, database_url)
        if limit:
            run_limited(folder / "limited", n_rate, limit, database_url.replace("send.db", "limited.db"))
    finally:
        if postgres:
            postgres.stop()


def run(folder: Path, n_rate: int, n_late: int, database_url: str) -> None:
    print(f"database: {database_url.split(':')[0]}")
    with RedisServer(folder / "redis") as redis_server, MailCatcher() as catcher:
        settings = load_settings({"database_url": database_url, "instance_dir": folder,
                                  "redis_url": redis_server.url, "smtp_url": catcher.url,
                                  "secret_key": "bench-secret-0123456789abcdef",
                                  "intake_address": "followup@acme.example"}, environ={}, env_file=None)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        services = context.configure(settings)
        sample = sample_message(engine, services, settings, folder)
        raws = sorted(raw_rate(catcher, n_rate, sample) for _ in range(3))  # this machine is noisy: the median
        raw = raws[1]
        print(f"raw smtplib, one connection:          {raw:8.1f} msgs/s (median of 3 x {n_rate}: "
              f"{', '.join(f'{r:.0f}' for r in raws)})")
        catcher.clear()
        worker = start_worker(settings, redis_server.url)
        try:
            # All due at one moment, their jobs queued beforehand (as planning does): from that moment to the
            # last one recorded as sent.
            due = datetime.now(UTC) + timedelta(seconds=10 + n_rate / 500)
            ids = make_rows(engine, settings, n_rate, due, 0)
            enqueue_sends(services, [(outbound_id, due) for outbound_id in ids])
            wait_sent(engine, ids)
            with Session(engine) as session:
                last = session.exec(select(func.max(OutboundEmail.sent_at)).where(OutboundEmail.id.in_(ids))).one()
            rate = n_rate / (last - due).total_seconds()
            print(f"Keepwarm worker, {n_rate} due emails:     {rate:8.1f} msgs/s")
            print(f"ratio worker / raw = {rate / raw:.2f} (target >= 0.7)")
            # A backlog (the worker was down): overdue rows, jobs enqueued now, nothing composed ahead.
            ids = make_rows(engine, settings, n_rate, datetime.now(UTC) - timedelta(hours=1), 2 * n_rate)
            started = time.perf_counter()
            enqueue_sends(services, [(outbound_id, datetime.now(UTC) - timedelta(hours=1)) for outbound_id in ids])
            wait_sent(engine, ids)
            backlog = n_rate / (time.perf_counter() - started)
            print(f"Keepwarm worker, {n_rate} overdue (backlog): {backlog:8.1f} msgs/s, ratio {backlog / raw:.2f}")
            measure_lateness(services, engine, settings, n_late, offset=3 * n_rate)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        print(f"delivered to the catcher: {len(catcher.caught)} (expected {2 * n_rate + n_late})")


def run_limited(folder: Path, n: int, limit: str, database_url: str) -> None:
    """n emails due at once, sent by a worker under the relay limit `limit`: the rate achieved and the most in any
    window of the limit, from the catcher's clock."""
    from limits import parse_many

    item = parse_many(limit)[0]
    folder.mkdir(parents=True, exist_ok=True)
    with RedisServer(folder / "redis") as redis_server, MailCatcher() as catcher:
        settings = load_settings({"database_url": database_url, "instance_dir": folder,
                                  "redis_url": redis_server.url, "smtp_url": catcher.url, "relay_limits": limit,
                                  "secret_key": "bench-secret-0123456789abcdef",
                                  "intake_address": "followup@acme.example"}, environ={}, env_file=None)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        services = context.configure(settings)
        worker = start_worker(settings, redis_server.url)
        try:
            due = datetime.now(UTC) + timedelta(seconds=5)
            ids = make_rows(engine, settings, n, due, 0)
            enqueue_sends(services, [(outbound_id, due) for outbound_id in ids])
            wait_sent(engine, ids, timeout=max(900.0, 3 * n / (item.amount / item.get_expiry())))
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        times = sorted(c.received_at for c in catcher.caught)
    span = item.get_expiry()
    most = max(sum(1 for u in times[i:] if u < t + span) for i, t in enumerate(times))
    # The rate over the whole windows the backlog needed: the first window's turns go at once, the rest at the pace.
    achieved = (len(times) - item.amount) / (times[-1] - times[0]) * span if len(times) > item.amount else None
    print(f"under the limit {limit}: {len(times)} delivered in {times[-1] - times[0]:.1f}s; "
          f"most in any {span:g}s window {most} (limit {item.amount}, over it: {max(0, most - item.amount)}); "
          f"pace after the first window {achieved:.1f} per {span:g}s" if achieved else "")


def measure_lateness(services, engine, settings, n: int, offset: int) -> None:
    due = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    ids = make_rows(engine, settings, n, due, offset)
    enqueue_sends(services, [(outbound_id, due) for outbound_id in ids])
    wait_sent(engine, ids)
    with Session(engine) as session:
        sent = session.exec(select(OutboundEmail.sent_at).where(OutboundEmail.id.in_(ids))).all()
    lateness = sorted((s - due).total_seconds() for s in sent)
    p99 = lateness[int(len(lateness) * 0.99) - 1]
    print(f"lateness of {n} emails due in the same second: p50 {statistics.median(lateness):.2f}s, "
          f"p99 {p99:.2f}s, max {lateness[-1]:.2f}s, early {sum(1 for x in lateness if x < 0)} (target p99 <= 2s)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    limit = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--limit=")), None)
    main(int(args[0]) if args else 2000, int(args[1]) if len(args) > 1 else 1000, "--postgres" in sys.argv, limit)
