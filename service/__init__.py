"""Keepwarm: after a lost sale, thank the customer, plan the recontact and ask the rep for a debrief."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from service import context
from service.settings import Settings, load_settings


def create_app(settings: Settings | Mapping | None = None) -> Flask:
    """The web app; tests pass settings (or a mapping of overrides) instead of the environment."""
    if not isinstance(settings, Settings):
        settings = load_settings(settings)
    services = context.configure(settings)
    app = Flask(__name__, template_folder="../templates/web", static_folder="static")
    app.config.update(SECRET_KEY=services.settings.secret_key, KEEPWARM=services)
    app.config.update(WTF_CSRF_TIME_LIMIT=None, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=services.settings.base_url.startswith("https://"))
    # Werkzeug caps each form field (500 kB) but not an uploaded file, which it spools to disk, and CSRFProtect
    # parses every POST before any login check: without a cap, anyone could stream gigabytes to /tmp. The largest
    # legitimate body (a template's sources, the reps CSV) is well under it.
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    csrf.init_app(app)
    if services.settings.proxy_hops:  # the visitor's own IP and scheme, as the proxies in front report them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=services.settings.proxy_hops,
                                x_proto=services.settings.proxy_hops)
    from service.web import admin, debrief, feed, health, i18n, manage, unsubscribe

    for blueprint in (health.bp, manage.bp, unsubscribe.bp, feed.bp):
        app.register_blueprint(blueprint)
    from service.web.landing import bp as landing  # the page at /, in a line of its own
    app.register_blueprint(landing)
    admin.init_app(app)
    debrief.init_app(app)
    i18n.init_app(app)  # pages in the rep's or the customer's language (gettext catalogs)
    app.after_request(_security_headers)
    # RFC 8058 one-click unsubscribe comes from mail providers: no cookie, no CSRF token, only the signed URL.
    csrf.exempt(unsubscribe.one_click)
    return app


csrf = CSRFProtect()
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # 413 beyond this, before the body is read

# No inline script anywhere (htmx and our own JS are files under /static); inline style attributes are allowed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
