"""Soak under faults: 10,000 BCCs through Dovecot → Keepwarm (1 poller, 2 workers, PostgreSQL) → aiosmtpd,
while a chaos loop kill -9s a worker every 20 s and restarts Redis once. A killed worker is started again under
its name, as a container restarts with its host name (see KEEPWARM_WORKER_ID).

Prints expected vs delivered, Message-IDs delivered more than once, lost, p50/p99 lateness (all, and outside
the 10 s after each kill or restart), and peak RSS per process. Asserts nothing.

Then why each email later than 5 s was late: a probe looks at the database and Redis every second while the emails
go (which rows are claimed and by whom, rows given back, RQ's overdue scheduled jobs and its scheduler lock), and
the workers' logs say when the reconciler re-queued rows. Each late email gets the event before it and one cause:
revived after a lease lapsed, revived at its worker's restart, given back and taken again, re-queued by the
reconciler, waited for RQ's scheduler, waited for a free worker, or held in a worker's backlog. The groups are
printed; every late email, one per line, goes to late.tsv in the soak's folder. Last, a timeline of emails
delivered per second around each event.

The planned emails are thank-yous on the next business morning and recontacts months away; after ingest the
soak moves every scheduled email to a due time spread over the next two minutes and enqueues it again, so the
sending side is exercised at full rate. Usage: .venv/bin/python bench/soak.py [N] [--sqlite]
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from imapclient import IMAPClient
from rq.scheduler import RQScheduler

sys.path.insert(0, str(Path(__file__).parents[1]))

from service import context  # noqa: E402
from service.db import make_engine, upgrade  # noqa: E402
from service.models import InboundMessage, OutboundEmail  # noqa: E402
from service.outbox import schedule  # noqa: E402
from service.outbox.schedule import enqueue_sends  # noqa: E402
from service.run.devstack import DovecotServer, MailCatcher, RedisServer  # noqa: E402
from service.run.devstack.servers import PostgresServer  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.team.reps import save_rep  # noqa: E402
from tests.mail import recap  # noqa: E402

NOTES = ["Lost for now: no budget until March. Their CFO Maria Rossi must sign off.",
         "They went with the incumbent; price was the issue. Try again in 6 months.",
         "Not now, timing is wrong for them; after the summer.",
         "Grazie dell'incontro, per ora non c'è budget: ci risentiamo a settembre."]


class Fleet:
    """The Keepwarm processes, restartable, with RSS sampling of each and of its children."""

    def __init__(self, env: dict, folder: Path):
        self.env, self.folder = env, folder
        self.processes: dict[str, subprocess.Popen] = {}
        self.peak_rss: dict[str, int] = Counter()
        self.events: list[tuple[float, str]] = []

    def start(self, name: str, role: str) -> None:
        """Start (or start again) one process; a worker keeps its name across restarts, as a container does."""
        log = open(self.folder / f"{name}.log", "ab")
        env = {**self.env, "KEEPWARM_WORKER_ID": name} if role == "worker" else self.env
        self.processes[name] = subprocess.Popen([sys.executable, "-m", "service.cli", role], env=env,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill9(self, name: str, role: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()
        self.events.append((time.time(), f"kill -9 {name}"))
        self.start(name, role)

    def revive(self) -> None:
        """What a supervisor (docker's restart policy) would do: start again whatever died by itself."""
        for name, process in list(self.processes.items()):
            if process.poll() is not None:
                self.events.append((time.time(), f"{name} exited by itself ({process.returncode}), restarted"))
                self.start(name, "poll" if name == "poller" else "worker")

    def sample_rss(self) -> None:
        for name, process in self.processes.items():
            self.peak_rss[name] = max(self.peak_rss[name], _rss_kb(process.pid))

    def stop(self) -> None:
        """SIGTERM every process; how long each took to exit is kept (a worker must not hold on to a drain)."""
        started = time.monotonic()
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.stopped_in = {}
        for name, process in self.processes.items():
            process.wait(90)
            self.stopped_in[name] = time.monotonic() - started


def _rss_kb(pid: int) -> int:
    """RSS of the process itself (its forked work horses come and go per job and are not counted)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Probe:
    """Every second while the emails go: which due rows are claimed (first seen `sending`, by whom), which went back
    to `scheduled` after a claim, and RQ's side (jobs overdue in the schedule, the queue, the scheduler lock)."""

    def __init__(self, engine, services):
        self.engine, self.services = engine, services
        self.claims: dict[int, list[tuple[float, str]]] = {}  # id -> [(first seen sending, holder)]
        self.returned: dict[int, list[float]] = {}  # id -> times seen scheduled again after a claim
        self.rq: list[tuple[float, int, int, str]] = []  # (time, overdue scheduled jobs, queued, scheduler lock)
        self.seen: dict[int, tuple[str, str | None]] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(1):
            try:
                self.sample()
            except Exception as error:  # Redis restarting, a database hiccup: the next second
                self.rq.append((time.time(), -1, -1, f"probe failed: {type(error).__name__}"))

    def sample(self) -> None:
        now, table = time.time(), OutboundEmail.__table__
        horizon = datetime.now(UTC) + schedule.LEAD + timedelta(seconds=1)
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.id, table.c.status, table.c.held_by).where(
                table.c.status.in_(("scheduled", "sending")), table.c.due_at <= horizon)).all()
        for outbound_id, status, held_by in rows:
            before = self.seen.get(outbound_id)
            if status == "sending" and before != ("sending", held_by):
                self.claims.setdefault(outbound_id, []).append((now, held_by or "?"))
            elif status == "scheduled" and before and before[0] == "sending":
                self.returned.setdefault(outbound_id, []).append(now)
            self.seen[outbound_id] = (status, held_by)
        redis = self.services.redis
        queue = self.services.queue("outbox")
        overdue = redis.zcount(queue.scheduled_job_registry.key, "-inf", now - 2)
        lock = redis.get(RQScheduler.get_locking_key("outbox"))
        self.rq.append((now, overdue, redis.llen(queue.key), (lock or b"-").decode()[:8]))

    def overdue_between(self, start: float, end: float) -> int:
        """The most jobs RQ's schedule held overdue (2 s past their time) at any look between start and end."""
        return max((n for t, n, _q, _l in self.rq if start <= t <= end), default=0)


def _reconciles(folder: Path) -> list[tuple[float, int]]:
    """(when, how many) of every reconcile that re-queued rows, from the workers' logs."""
    found = []
    for log in folder.glob("worker*.log"):
        for line in log.read_text(errors="replace").splitlines():
            match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*reconcile: (\d+) re-enqueued", line)
            if match:
                moment = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(match[2]) / 1000
                found.append((moment, int(match[3])))
    return sorted(found)


def chaos(fleet: Fleet, redis: RedisServer, stop: threading.Event) -> None:
    """Every 20 s kill -9 a worker (alternating) and restart it; restart Redis once, at 50 s."""
    started, n, redis_done = time.monotonic(), 0, False
    while not stop.wait(1):
        fleet.sample_rss()
        fleet.revive()
        elapsed = time.monotonic() - started
        if elapsed > 50 and not redis_done:
            port = redis.port
            redis.kill()
            redis.port = port
            redis.start()
            fleet.events.append((time.time(), "redis restarted"))
            redis_done = True
        if elapsed > 20 * (n + 1):
            n += 1
            fleet.kill9(f"worker{n % 2}", "worker")


def main(count: int, use_sqlite: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kw-soak-"))
    postgres = None if use_sqlite else PostgresServer(folder / "pg").start()
    redis = RedisServer(folder / "redis", persistent=True).start()
    dovecot = DovecotServer(folder / "imap", users={"followup@acme.example": "soak"}).start()
    catcher = MailCatcher().start()
    try:
        run(folder, count, postgres, redis, dovecot, catcher)
    finally:
        catcher.stop()
        for server in (dovecot, redis, postgres):
            if server is not None:
                server.stop()


def run(folder: Path, count: int, postgres, redis, dovecot, catcher) -> None:
    database = postgres.url() if postgres else f"sqlite:///{folder}/soak.db"
    settings = load_settings({"database_url": database, "redis_url": redis.url, "imap_url": dovecot.url(),
                              "smtp_url": catcher.url, "intake_address": "followup@acme.example",
                              "secret_key": "soak-secret-0123456789abcdef", "instance_dir": folder,
                              "poll_interval": 5}, environ={}, env_file=None)
    upgrade(database)
    engine = make_engine(database)
    save_rep(engine, "tom.baker@acme.example", name="Tom Baker", timezone="Europe/London")
    _append(dovecot, count)
    env = {**os.environ, **{f"KEEPWARM_{k.upper()}": str(v) for k, v in {
        "database_url": database, "redis_url": redis.url, "imap_url": dovecot.url(), "smtp_url": catcher.url,
        "intake_address": "followup@acme.example", "secret_key": settings.secret_key,
        "instance_dir": folder, "poll_interval": 5}.items()}}
    fleet = Fleet(env, folder)
    fleet.start("poller", "poll")
    for n in range(2):
        fleet.start(f"worker{n}", "worker")
    stop = threading.Event()
    threading.Thread(target=chaos, args=(fleet, redis, stop), daemon=True).start()
    started = time.time()
    _wait(lambda: _count(engine, InboundMessage.status != "new") >= count, 1800, "ingest")
    print(f"ingested {count} BCCs in {time.time() - started:.0f}s (with the chaos loop running)")
    services = context.configure(settings)
    probe, probing = Probe(engine, services), threading.Event()
    due = _retime(engine, services)
    threading.Thread(target=probe.run, args=(probing,), daemon=True).start()
    _wait(lambda: _count(engine, OutboundEmail.status.in_(("scheduled", "sending"))) == 0, 1800, "sending")
    probing.set()
    stop.set()
    fleet.stop()
    report(engine, catcher, fleet, due)
    explain(engine, catcher, fleet, due, probe, folder)


def _append(dovecot: DovecotServer, count: int) -> None:
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login("followup@acme.example", "soak")
    rng = random.Random(1)
    for start in range(0, count, 250):
        client.multiappend("INBOX", [recap(n, to=f"Customer {n} <c{n}@client{n % 97}.example>",
                                           body=f"Hi,\n\n{rng.choice(NOTES)}\n\nTom")
                                     for n in range(start, min(start + 250, count))])
    client.logout()


def _retime(engine, services) -> dict[str, datetime]:
    """Spread every scheduled email over the next two minutes (from 10 s on), and enqueue it for its new time
    with enqueue_sends, as planning does, the first due first (their jobs exist well before they are due)."""
    started = time.monotonic()
    now = datetime.now(UTC)
    table = OutboundEmail.__table__
    with engine.begin() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.message_id, table.c.due_at)
                                  .where(table.c.status == "scheduled")).all()
        new_due = {outbound_id: min(old_due, now + timedelta(seconds=10 + outbound_id % 110))
                   for outbound_id, _, old_due in rows}
        connection.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                           .values(due_at=sa.bindparam("new_due")),
                           [{"row_id": i, "new_due": d} for i, d in new_due.items()])
    updated = time.monotonic() - started
    enqueue_sends(services, sorted(new_due.items(), key=lambda item: item[1]))  # the first due, queued first
    print(f"re-timed {len(rows)} scheduled emails in {updated:.1f}s and enqueued them in "
          f"{time.monotonic() - started - updated:.1f}s; the first is due {10 - (time.monotonic() - started):.0f}s "
          f"after that")
    return {message_id: new_due[outbound_id] for outbound_id, message_id, _ in rows}


def report(engine, catcher: MailCatcher, fleet: Fleet, due: dict[str, datetime]) -> None:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(OutboundEmail.message_id, OutboundEmail.status)).all()
    expected = {m for m, status in rows if status in ("sent", "failed")}
    ids = [caught.message_id for caught in catcher.caught]
    delivered = Counter(ids)
    first: dict[str, float] = {}
    for message_id, caught in zip(ids, catcher.caught, strict=True):
        first.setdefault(message_id, caught.received_at)
    late = [first[m] - d.timestamp() for m, d in due.items() if m in first]
    calm_due = {m: d.timestamp() for m, d in due.items() if m in first and not _near(d.timestamp(), fleet)}
    calm = [first[m] - d for m, d in calm_due.items()]
    slow = [d for m, d in calm_due.items() if first[m] - d > 5]
    print(f"emails expected {len(expected)}, delivered (unique Message-IDs) {len(set(delivered) & expected)}, "
          f"lost {len(expected - set(delivered))}, statuses {dict(Counter(s for _, s in rows))}")
    twice = [m for m, c in delivered.items() if c > 1]
    # A duplicate is an email sent but not yet recorded when its worker died: its first copy left just before.
    print(f"Message-IDs delivered more than once: {len(twice)} (first copy within 10 s before a kill or "
          f"restart: {sum(1 for m in twice if _near(first[m], fleet, 10, before=True))})")
    print(f"lateness of the {len(late)} re-timed emails: p50 {_pct(late, 50):.2f}s, p99 {_pct(late, 99):.2f}s, "
          f"max {max(late, default=0):.2f}s, early {sum(1 for x in late if x < 0)}")
    print(f"  outside the 10 s after each kill/restart ({len(calm)}): p50 {_pct(calm, 50):.2f}s, "
          f"p99 {_pct(calm, 99):.2f}s; later than 5 s: {len(slow)}, of which due in the 5 s before a kill or "
          f"restart: {sum(1 for d in slow if _near(d, fleet, 5, before=True))}")
    print("peak RSS: " + ", ".join(f"{k} {v / 1024:.0f} MB" for k, v in sorted(fleet.peak_rss.items())))
    print("events: " + "; ".join(f"+{t - fleet.events[0][0]:.0f}s {e}" for t, e in fleet.events))
    print("stopped (SIGTERM to exit): " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(fleet.stopped_in.items())))


LATE = 5.0  # seconds: an email later than this is explained


def explain(engine, catcher: MailCatcher, fleet: Fleet, due: dict[str, datetime], probe: Probe,
            folder: Path) -> None:
    """Why each email later than LATE was late (see the module's docstring), then sends per second around each
    event."""
    first: dict[str, float] = {}
    for caught in catcher.caught:
        first.setdefault(caught.message_id, caught.received_at)
    table = OutboundEmail.__table__
    with engine.connect() as connection:
        rows = {m: (i, e) for i, m, e in connection.execute(sa.select(table.c.id, table.c.message_id,
                                                                       table.c.last_error))}
    reconciles = _reconciles(folder)
    late, origin = [], fleet.events[0][0] if fleet.events else time.time()
    for message_id, due_at in due.items():
        if message_id not in first or first[message_id] - due_at.timestamp() <= LATE:
            continue
        outbound_id, last_error = rows[message_id]
        sent, moment = first[message_id], due_at.timestamp()
        claims = [(t, h) for t, h in probe.claims.get(outbound_id, []) if t <= sent + 1]
        claimed = claims[-1][0] if claims else sent
        event = max(((t, e) for t, e in fleet.events if moment - 30 <= t <= sent), default=None)
        cause = _cause(last_error or "", probe.returned.get(outbound_id, []), moment, claimed, reconciles,
                       probe.overdue_between(moment, claimed))
        late.append((sent - moment, cause, event, outbound_id, moment, claimed, sent,
                     ",".join(h for _t, h in claims)))
    print(f"\nwhy {len(late)} emails were later than {LATE:.0f} s (event: the last kill or restart in the 30 s before "
          f"the email was due, up to its delivery):")
    groups: dict[tuple[str, str], list[float]] = {}
    for lateness, cause, event, *_rest in late:
        name = f"+{event[0] - origin:.0f}s {event[1]}" if event else "no event"
        groups.setdefault((name, cause), []).append(lateness)
    for (name, cause), values in sorted(groups.items(), key=lambda item: (item[0][0], -len(item[1]))):
        print(f"  {len(values):6d}  {name:38s} {cause:44s} late {min(values):5.1f}-{max(values):5.1f}s")
    by_cause = Counter(cause for _l, cause, *_rest in late)
    print("  by cause: " + "; ".join(f"{cause} {n}" for cause, n in by_cause.most_common()))
    with open(folder / "late.tsv", "w") as out:
        out.write("id\tlate_s\tcause\tevent\tdue_+s\tclaimed_+s\tdelivered_+s\tholders\n")
        for lateness, cause, event, outbound_id, moment, claimed, sent, holders in sorted(late, key=lambda x: x[4]):
            out.write(f"{outbound_id}\t{lateness:.1f}\t{cause}\t{event[1] if event else '-'}\t"
                      f"{moment - origin:.1f}\t{claimed - origin:.1f}\t{sent - origin:.1f}\t{holders}\n")
    print(f"  one line per email: {folder / 'late.tsv'}")
    _timeline(catcher, fleet, probe, origin)


def _cause(last_error: str, returned: list[float], due: float, claimed: float, reconciles: list, overdue: int) -> str:
    if "abandoned mid-send by a dead worker" in last_error:
        return "revived after its lease lapsed"
    if "known dead" in last_error:
        return "revived: its worker known dead"
    if "previous run" in last_error:
        return "revived at its worker's restart"
    if any(t < claimed for t in returned):
        return "given back unsent, then taken again"
    if claimed - due <= 3:
        return "claimed on time, held in a worker's backlog"
    if any(due - 1 <= t <= claimed and claimed - t <= 5 for t, _n in reconciles):
        return "re-queued by the reconciler"
    if overdue:
        return "waited for RQ's scheduler (jobs overdue)"
    return "waited for a free worker (backlog)"


def _timeline(catcher: MailCatcher, fleet: Fleet, probe: Probe, origin: float) -> None:
    """Emails delivered in each second from 5 s before each event to 40 s after, and the jobs RQ's schedule held
    overdue then (`s` marks a second with some)."""
    per_second = Counter(int(caught.received_at) for caught in catcher.caught)
    overdue = {int(t): n for t, n, _q, _l in probe.rq}
    locks = {int(t): lock for t, _n, _q, lock in probe.rq}
    print("\nemails delivered per second around each event (from -5 s; `s`: jobs overdue in RQ's schedule then; "
          "scheduler lock holder at -1 s and +30 s):")
    for moment, what in fleet.events:
        if moment < min(per_second, default=moment + 1) - 5:
            continue  # during ingest, before the emails were re-timed
        second = int(moment)
        cells = [f"{per_second.get(t, 0)}{'s' if overdue.get(t, 0) > 0 else ''}" for t in range(second - 5, second + 41)]
        print(f"  +{moment - origin:4.0f}s {what:34s} [{locks.get(second - 1, '?')} -> {locks.get(second + 30, '?')}] "
              + " ".join(cells))


def _near(moment: float, fleet: Fleet, seconds: float = 10, *, before: bool = False) -> bool:
    """Within `seconds` after an event (or before it)."""
    return any(0 <= (t - moment if before else moment - t) <= seconds for t, _ in fleet.events)


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _count(engine, condition) -> int:
    table = condition.left.table if hasattr(condition, "left") else InboundMessage.__table__
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table).where(condition)).scalar_one()


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise TimeoutError(f"{what} did not finish in {seconds}s")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 10_000, "--sqlite" in sys.argv)
