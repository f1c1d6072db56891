"""The admin pages under /admin/ (login required): templates, settings, reps, inbox, outbox, audit, queues."""

from __future__ import annotations

from flask import Flask

from service.web.admin.auth import init_auth


def init_app(app: Flask) -> None:
    """Register the admin blueprint and the login manager."""
    from service.web.admin import routes_auth, routes_operations, routes_settings, routes_templates  # noqa: F401
    from service.web.admin.blueprint import bp

    init_auth(app)
    app.register_blueprint(bp)
