"""The `admin` blueprint: every view needs a logged-in admin (the login form aside), and strict headers."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from service.web.admin.auth import login_manager

bp = Blueprint("admin", __name__, url_prefix="/admin")

# The login form, and the page an invitation or a reset link opens (the signed link is the key).
PUBLIC = {"admin.login", "admin.set_password"}
# The preview shows admin-written HTML in a sandboxed srcdoc iframe: no script runs, no external image loads.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


@bp.before_request
def _require_login():
    """Belt and braces: a view that forgot @admin_required is still closed to anonymous visitors."""
    if request.endpoint in PUBLIC or current_user.is_authenticated:
        return None
    if request.headers.get("HX-Request"):  # a live preview after the session ended: reload onto the login form
        return "", 401, {"HX-Redirect": url_for("admin.login")}
    return login_manager.unauthorized()


@bp.after_request
def _harden(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Referrer-Policy", "same-origin")  # a page with a key in its URL sends none
    response.headers["Cache-Control"] = "no-store"  # admin pages hold customer data: never cache them
    return response


@bp.errorhandler(CSRFError)
def _csrf_failed(error: CSRFError):
    """A clear page (still 400) instead of a bare error, e.g. after the login session expired."""
    current_app.logger.warning("CSRF refused on %s: %s", request.path, error.description)
    return render_template("admin/error.html", title="Form expired",
                           text="This form was open too long or came from elsewhere. Go back, reload the "
                                "page and try again."), 400
