"""`/healthz`: 200 when the database and Redis answer, 503 naming what does not."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    services = current_app.config["KEEPWARM"]
    checks = {"database": _check(lambda: _select_one(services.engine)),
              "redis": _check(services.redis.ping)}
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503


def _select_one(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # health reports any failure as text instead of crashing
        return f"error: {type(error).__name__}: {error}"[:200]
    return "ok"
