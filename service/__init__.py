"""Keepwarm: after a lost sale, thank the customer, plan the recontact and ask the rep for a debrief."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from service import context
from service.settings import Settings, load_settings


def create_app(settings: Settings | Mapping | None = None) -> Flask:
    """The web app; tests pass settings (or a mapping of overrides) instead of the environment."""
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    services = context.configure(settings)
    app = Flask(__name__, template_folder="../templates/web", static_folder="static")
    app.config.update(SECRET_KEY=services.settings.secret_key, KEEPWARM=services)
    from service.web import health

    app.register_blueprint(health.bp)
    return app
