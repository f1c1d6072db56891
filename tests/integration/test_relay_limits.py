"""Sending within the relay's limits: a real SMTP server (aiosmtpd) that enforces a quota the way Microsoft 365,
Google or a Postfix relay do (past N messages in a window it answers 421 / 452 / 554 5.2.0 "quota"), real Redis
for the shared limit, the test database for the rows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from limits.strategies import MovingWindowRateLimiter
from sqlmodel import Session, select

from service import context, create_app
from service.models import Customer, OutboundEmail, Rep
from service.outbox import pace, sender
from service.outbox.rows import new_outbound
from service.run.devstack import free_port
from tests.integration.test_admin import _fresh_throttles, admin, login  # noqa: F401
from tests.integration.test_outbox import _due_rows, rows

WINDOW = 2.0  # seconds: the limit's window, short so a test takes seconds
# The relay counts its window a little shorter than ours: it sees each email when its DATA arrives, some
# milliseconds after the turn was taken, so an exact match would refuse an email the limit rightly let go.
JITTER = 0.25


class QuotaRelay:
    """An SMTP relay that accepts `quota` messages per WINDOW seconds and refuses the rest with `answer`."""

    def __init__(self, quota: int, answer: str):
        self.quota, self.answer = quota, answer
        self.accepted: list[tuple[float, str]] = []  # (when, Message-ID)
        self.refused = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        with self.lock:
            recent = [t for t, _ in self.accepted if now - t < WINDOW - JITTER]
            if len(recent) >= self.quota:
                self.refused += 1
                return self.answer
            message_id = next((line.split(b":", 1)[1].strip().decode() for line in envelope.content.splitlines()
                               if line.lower().startswith(b"message-id:")), "")
            self.accepted.append((now, message_id))
        return "250 OK"

    def most_in_any_window(self) -> int:
        times = sorted(t for t, _ in self.accepted)
        return max((sum(1 for u in times if t <= u < t + WINDOW - JITTER) for t in times), default=0)

    def __enter__(self) -> QuotaRelay:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture
def turns(monkeypatch, redis) -> dict[bytes, None]:
    """Every turn the shared limit gives, stamped as the limiter stamps it in Redis. The moving window keeps only
    its last N stamps, so each successful hit reads them at once, under a lock no other hit of this process can
    pass meanwhile (the workers here are threads): none is missed or counted twice."""
    stamps: dict[bytes, None] = {}
    lock = threading.Lock()
    hit = MovingWindowRateLimiter.hit

    def spy(limiter, item, *names, **options):
        with lock:
            taken = hit(limiter, item, *names, **options)
            if taken:
                key = limiter.storage.prefixed_key(item.key_for(*names))
                stamps.update(dict.fromkeys(redis.lrange(key, 0, -1)))
            return taken

    monkeypatch.setattr(MovingWindowRateLimiter, "hit", spy)
    return stamps


def most_turns_in_any_window(stamps) -> int:
    times = sorted(float(stamp) for stamp in stamps)
    return max((sum(1 for u in times if t <= u < t + WINDOW) for t in times), default=0)


@pytest.fixture
def relay_settings(settings, redis):
    """Points the worker context at a quota relay, with these settings."""

    def point_at(relay: QuotaRelay, **overrides):
        return context.configure(settings.with_overrides(smtp_url=f"smtp://127.0.0.1:{relay.port}", **overrides))

    return point_at


def _drain_until_done(services, seconds: float = 60) -> Counter:
    """Drain as a worker's jobs would, again and again, until no row is left scheduled or sending."""
    tally: Counter = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tally.update(sender.drain(services, seconds=10))
        with Session(services.engine) as session:
            left = session.exec(select(OutboundEmail.id).where(
                OutboundEmail.status.in_(("scheduled", "sending")))).all()
        if not left:
            return tally
        time.sleep(0.1)
    raise AssertionError(f"still {len(left)} emails to send after {seconds}s: {tally}")


def _due_now(engine) -> None:
    """Every row scheduled is due now (a deferred row is scheduled later: the test does not wait for the clock)."""
    with Session(engine) as session:
        for row in session.exec(select(OutboundEmail).where(OutboundEmail.status == "scheduled")):
            row.due_at = min(row.due_at, datetime.now(UTC))
        session.commit()


@pytest.mark.slow
def test_with_the_limit_set_the_relay_refuses_nothing_and_the_pace_holds(engine, settings, reps, redis,
                                                                          relay_settings, turns):
    _due_rows(engine, settings, 25)
    with QuotaRelay(quota=10, answer="421 4.7.0 Try again later, closing connection") as relay:
        # The limit a little under the relay's quota, as an admin sets it: the relay counts at DATA, a connection
        # and three round trips after each turn, and a loaded machine stretches that delay unevenly.
        relay_settings(relay, relay_limits=f"8 per {int(WINDOW)} seconds")
        tally = _drain_until_done(context.current())
    assert len(turns) == 25 and most_turns_in_any_window(turns) <= 8  # the pace, where the limit keeps it
    assert relay.refused == 0
    assert tally["sent"] == 25 and {r.status for r in rows(engine)} == {"sent"}
    assert relay.most_in_any_window() <= 10
    assert Counter(m for _, m in relay.accepted) == Counter({r.message_id: 1 for r in rows(engine)})
    assert all(r.attempts == 1 for r in rows(engine))  # a turn waited for is not a try


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["421 4.7.0 Try again later, closing connection",
                                    "452 4.5.3 Too many messages, slow down",
                                    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"])
def test_without_a_limit_a_throttling_relay_pauses_sending_and_loses_or_doubles_nothing(
        engine, settings, reps, redis, relay_settings, monkeypatch, answer):
    monkeypatch.setattr(pace, "PAUSE_FIRST", 0.5)
    _due_rows(engine, settings, 12)
    with QuotaRelay(quota=5, answer=answer) as relay:
        relay_settings(relay)
        services = context.current()
        deadline = time.monotonic() + 60
        while {r.status for r in rows(engine)} != {"sent"} and time.monotonic() < deadline:
            sender.drain(services, seconds=5)
            time.sleep(0.6)  # the pause lapses
            _due_now(engine)
    ended = rows(engine)
    assert {r.status for r in ended} == {"sent"} and relay.refused > 0
    assert Counter(m for _, m in relay.accepted) == Counter({r.message_id: 1 for r in ended})  # never doubled
    with Session(engine) as session:
        assert not any(c.undeliverable for c in session.exec(select(Customer)))
    assert redis.get(pace.BACKOFF_KEY) is not None  # the relay's "too fast" was counted, for the backoff


@pytest.mark.slow
def test_two_workers_together_stay_within_one_limit(engine, settings, reps, redis, relay_settings, turns):
    _due_rows(engine, settings, 30)
    with QuotaRelay(quota=1000, answer="421 4.7.0 never") as relay:
        relay_settings(relay, relay_limits=f"8 per {int(WINDOW)} seconds")
        services = context.current()
        threads = [threading.Thread(target=_drain_until_done, args=(services,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    # Counted where the limit is kept, not where the relay sees DATA: between a turn and its DATA lie a connection
    # and three SMTP round trips, which a loaded machine can stretch past any margin the relay's window could allow.
    assert len(turns) == 30 and most_turns_in_any_window(turns) <= 8  # one turn per email, 8 per window at most
    assert len(relay.accepted) == 30 and {r.status for r in rows(engine)} == {"sent"}


@pytest.mark.slow
def test_the_reps_summary_is_not_starved_by_a_backlog_of_customer_emails(engine, settings, reps, redis,
                                                                        relay_settings):
    _due_rows(engine, settings, 20, when=datetime.now(UTC) - timedelta(minutes=5))  # a backlog, due earlier
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        summary = new_outbound(settings, kind="rep_summary", rep=rep, to_address=rep.email, to_name=rep.name,
                               due_at=datetime.now(UTC), outcome_id=None, language="en")
        session.add(summary)
        session.commit()
        summary_id = summary.message_id
    with QuotaRelay(quota=1000, answer="421 4.7.0 never") as relay:
        relay_settings(relay, relay_limits=f"5 per {int(WINDOW)} seconds")
        sender.drain(context.current(), seconds=1)
    assert summary_id in [m for _, m in relay.accepted[:5]]


def test_the_admin_home_and_metrics_show_what_the_limit_holds_back(engine, settings, reps, redis, admin):  # noqa: F811
    limited = settings.with_overrides(relay_limits="30/minute;10000/day")
    context.configure(limited)
    _due_rows(engine, settings, 45)
    app = create_app(limited)
    client = app.test_client()
    assert login(client).status_code == 302
    home = client.get("/admin/").text
    assert "<strong>45</strong> emails are due and" in home and "(30/minute;10000/day)" in home
    done_by = datetime.now(UTC) + timedelta(minutes=1)  # 30 go now, the other 15 in the next minute's window
    assert f"expected to be done by <strong>{done_by:%Y-%m-%d %H:%M} UTC" in home or \
        f"expected to be done by <strong>{done_by - timedelta(minutes=1):%Y-%m-%d %H:%M} UTC" in home
    assert "keepwarm_outbound_waiting_on_limit 45.0" in client.get("/metrics").text
    redis.set(pace.PAUSE_KEY, repr(time.time() + 120))  # the relay throttled us
    assert "nothing leaves before" in client.get("/admin/").text


def test_nothing_is_said_when_no_limit_holds_anything_back(engine, settings, reps, redis, admin):  # noqa: F811
    context.configure(settings)
    _due_rows(engine, settings, 3)
    client = create_app(settings).test_client()
    assert login(client).status_code == 302
    assert 'id="paced"' not in client.get("/admin/").text
    assert "keepwarm_outbound_waiting_on_limit 0.0" in client.get("/metrics").text
