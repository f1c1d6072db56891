"""Prometheus metrics, computed at scrape time from the database and Redis.

Web, workers and pollers are separate processes (and RQ forks per job), so in-process counters would each see a
slice. The database already knows every message's gate status and every email's status and lateness, and the
pollers count IMAP errors in Redis: one scrape of any web process gives the whole picture.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from service.context import QUEUES, Services
from service.models import InboundMessage, OutboundEmail, WebhookDelivery, WebhookEndpoint

IMAP_ERRORS_KEY = "keepwarm:metrics:imap_errors"
MAILBOX_HEALTH_KEY = "keepwarm:mailbox:health:{}"
RELAY_PAUSE_KEY = "keepwarm:relay:paused_until"  # set by the senders when the relay throttles us (outbox.pace)  # the poller's last word on its mailbox, per mailbox key
LATENESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
LATENESS_WINDOW = timedelta(hours=24)


class _Collector:
    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        yield from _inbound(self.services)
        yield from _outbound(self.services)
        yield _lateness(self.services)
        yield from _queues(self.services)
        yield _imap_errors(self.services)
        yield _waiting_on_limit(self.services)
        yield _webhook_deliveries(self.services)


def render_metrics(services: Services) -> bytes:
    registry = CollectorRegistry()
    registry.register(_Collector(services))
    return generate_latest(registry)


def _inbound(services: Services):
    family = CounterMetricFamily("keepwarm_inbound_messages", "Inbound messages by status and gate reason",
                                 labels=["status", "reason"])
    query = sa.select(InboundMessage.status, InboundMessage.reason, sa.func.count()).group_by(
        InboundMessage.status, InboundMessage.reason)
    with services.engine.connect() as connection:
        for status, reason, count in connection.execute(query):
            family.add_metric([status, _reason_label(reason)], count)
    yield family


def _reason_label(reason: str | None) -> str:
    """Quarantine reasons carry details (sizes, errors): keep only their first word as the label."""
    return (reason or "").split(":", 1)[0].split(" ", 1)[0]


def _outbound(services: Services):
    family = GaugeMetricFamily("keepwarm_outbound_emails", "Emails by kind and status", labels=["kind", "status"])
    query = sa.select(OutboundEmail.kind, OutboundEmail.status, sa.func.count()).group_by(
        OutboundEmail.kind, OutboundEmail.status)
    with services.engine.connect() as connection:
        for kind, status, count in connection.execute(query):
            family.add_metric([kind, status], count)
    yield family


def _lateness(services: Services) -> HistogramMetricFamily:
    """Seconds between due and sent, for emails sent in the last 24 hours."""
    since = datetime.now(UTC) - LATENESS_WINDOW
    query = sa.select(OutboundEmail.due_at, OutboundEmail.sent_at).where(
        OutboundEmail.status == "sent", OutboundEmail.sent_at >= since)
    with services.engine.connect() as connection:
        late = [max((sent - due).total_seconds(), 0.0) for due, sent in connection.execute(query)]
    buckets = [(str(b), sum(1 for x in late if x <= b)) for b in LATENESS_BUCKETS] + [("+Inf", len(late))]
    family = HistogramMetricFamily("keepwarm_send_lateness_seconds", "Seconds sent after due (last 24h)")
    family.add_metric([], buckets, sum_value=sum(late))
    return family


def _queues(services: Services):
    depth = GaugeMetricFamily("keepwarm_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"])
    for name in QUEUES:
        queue = services.queue(name)
        depth.add_metric([name, "queued"], queue.count)
        for state, registry in (("scheduled", ScheduledJobRegistry), ("started", StartedJobRegistry),
                                ("failed", FailedJobRegistry)):
            depth.add_metric([name, state], registry(queue=queue).count)
    yield depth


def _imap_errors(services: Services) -> CounterMetricFamily:
    family = CounterMetricFamily("keepwarm_imap_errors", "IMAP connection and command errors seen by pollers")
    family.add_metric([], float(services.redis.get(IMAP_ERRORS_KEY) or 0))
    return family


def count_imap_error(services: Services) -> None:
    try:
        services.redis.incr(IMAP_ERRORS_KEY)
    except Exception:  # metrics never break the poller
        pass


def mailbox_key(url) -> str:
    """How a mailbox is named in Redis and the database: user@host:port/folder."""
    return f"{url.username}@{url.host}:{url.port}/{url.path.strip('/') or 'INBOX'}"


def report_mailbox(services: Services, key: str, error: str | None) -> None:
    """The poller's word on its mailbox after each pass or failed login: fine, or the error and since when.
    The web's /readyz reads it, so the web never logs in to the mailbox itself."""
    try:
        raw = services.redis.get(MAILBOX_HEALTH_KEY.format(key))
        previous = json.loads(raw) if raw else None
        now = datetime.now(UTC).isoformat(timespec="seconds")
        same = previous is not None and bool(previous.get("error")) == bool(error)
        report = {"at": now, "error": error[:300] if error else None, "since": previous["since"] if same else now}
        services.redis.set(MAILBOX_HEALTH_KEY.format(key), json.dumps(report), ex=7 * 86400)
    except Exception:  # health reports never break the poller
        pass


def mailbox_health(services: Services, key: str, *, max_age: timedelta) -> str:
    """"ok" when the poller's last pass worked less than `max_age` ago, else "error: …" saying what and since."""
    raw = services.redis.get(MAILBOX_HEALTH_KEY.format(key))
    if raw is None:
        return "error: no poller has reported on this mailbox yet"
    report = json.loads(raw)
    if report.get("error"):
        return f"error: {report['error']} (since {report['since']})"
    if datetime.now(UTC) - datetime.fromisoformat(report["at"]) > max_age:
        return f"error: no pass of the poller since {report['at']}"
    return "ok"


def relay_paused_until(services: Services) -> float:
    """The moment (a Unix time) before which the senders send nothing because the relay throttled us; 0.0: none."""
    try:
        return float(services.redis.get(RELAY_PAUSE_KEY) or 0)
    except Exception:  # Redis away: no pause known
        return 0.0


def waiting_on_limit(services: Services) -> int:
    """Emails due and not sent because the relay's limit (KEEPWARM_RELAY_LIMITS) or its pause holds them back."""
    if not services.settings.relay_limits and relay_paused_until(services) <= time.time():
        return 0
    with services.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(OutboundEmail).where(
            OutboundEmail.status == "scheduled", OutboundEmail.due_at <= datetime.now(UTC))).scalar_one()


def _waiting_on_limit(services: Services) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("keepwarm_outbound_waiting_on_limit",
                              "Emails due but held back by the relay's sending limit or its throttling pause")
    gauge.add_metric([], waiting_on_limit(services))
    return gauge


def _webhook_deliveries(services: Services) -> GaugeMetricFamily:
    """Webhook deliveries by endpoint (its id and host), event and status, from the database."""
    family = GaugeMetricFamily("keepwarm_webhook_deliveries", "Webhook deliveries by endpoint, event and status",
                               labels=["endpoint", "host", "event", "status"])
    query = (sa.select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookDelivery.event, WebhookDelivery.status,
                       sa.func.count())
             .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .group_by(WebhookEndpoint.id, WebhookEndpoint.url, WebhookDelivery.event, WebhookDelivery.status))
    with services.engine.connect() as connection:
        for endpoint_id, url, event, status, count in connection.execute(query):
            family.add_metric([str(endpoint_id), urlsplit(url).hostname or "", event, status], count)
    return family
