"""`/healthz` (the database and Redis answer), `/readyz` (and the mailbox too) and `/metrics` (Prometheus)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    services = current_app.config["KEEPWARM"]
    return _report({"database": _check(lambda: _select_one(services.engine)),
                    "redis": _check(services.redis.ping)})


@bp.get("/readyz")
def readyz():
    """Ready to do the job: database, Redis and the IMAP mailbox all answer."""
    services = current_app.config["KEEPWARM"]
    return _report({"database": _check(lambda: _select_one(services.engine)),
                    "redis": _check(services.redis.ping),
                    "imap": _check(lambda: _imap_login(services.settings))})


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


def _imap_login(settings) -> None:
    from imapclient import IMAPClient

    url = settings.imap()
    with IMAPClient(url.host, port=url.port, ssl=url.secure, timeout=5) as client:
        client.login(url.username or "", url.password or "")
        client.noop()


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # health reports any failure as text instead of crashing
        return f"error: {type(error).__name__}: {error}"[:200]
    return "ok"
