"""The admin pages under /admin/ (login required): templates, settings, reps, inbox, outbox, audit, queues, admins."""

from __future__ import annotations

from flask import Flask

from service.web.admin.auth import init_auth


def init_app(app: Flask) -> None:
    """Register the admin blueprint, the login manager and the login throttle."""
    from service.web.admin import (  # noqa: F401  (imported for their routes)
        routes_admins,
        routes_auth,
        routes_operations,
        routes_settings,
        routes_templates,
        routes_webhooks,
    )
    from service.web.admin.blueprint import bp
    from service.web.admin.throttle import init_throttle

    init_auth(app)
    app.register_blueprint(bp)
    init_throttle(app)  # after the blueprint: it wraps the registered login view
