"""`/healthz` (the database and Redis answer), `/readyz` (and the poller reads the mailbox) and `/metrics`
(Prometheus). The web never logs in to the mailbox: the poller reports on it after each pass (service.metrics)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from service.metrics import mailbox_health, mailbox_key

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    services = current_app.config["KEEPWARM"]
    return _report({"database": _check(lambda: _select_one(services.engine)),
                    "redis": _check(services.redis.ping)})


@bp.get("/readyz")
def readyz():
    """Ready to do the job: database and Redis answer, and the poller's last pass over the mailbox worked, recently
    (three poll intervals and a minute: a poller passes at least once per interval)."""
    services = current_app.config["KEEPWARM"]
    return _report({"database": _check(lambda: _select_one(services.engine)),
                    "redis": _check(services.redis.ping),
                    "imap": _imap(services)})


@bp.get("/metrics")
def metrics():
    from prometheus_client import CONTENT_TYPE_LATEST

    from service.metrics import render_metrics

    return Response(render_metrics(current_app.config["KEEPWARM"]), content_type=CONTENT_TYPE_LATEST)


def _report(checks: dict[str, str]):
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503


def _select_one(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _imap(services) -> str:
    try:
        key = mailbox_key(services.settings.imap())
        return mailbox_health(services, key, max_age=timedelta(seconds=3 * services.settings.poll_interval + 60))
    except Exception as error:  # Redis down or no mailbox configured: said as text
        return f"error: {type(error).__name__}: {error}"[:200]


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # health reports any failure as text instead of crashing
        return f"error: {type(error).__name__}: {error}"[:200]
    return "ok"
