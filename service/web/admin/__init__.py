"""The admin pages under /admin/ (login required): templates, settings, reps, inbox, outbox, audit, queues."""

from __future__ import annotations

from flask import Flask

from service.web.admin.auth import init_auth


def init_app(app: Flask) -> None:
    """Register the admin blueprint(s) and the login manager."""
    init_auth(app)
