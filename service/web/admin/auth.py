"""Admin login (Flask-Login). `admin_required` protects every admin page, insights included.

Colleagues protect their own admin-only views with it:

    from service.web.admin.auth import admin_required

    @bp.get("/admin/insights")
    @admin_required
    def insights(): ...

An anonymous visitor is sent to the login form (302 to /admin/login?next=…).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from flask_login import LoginManager, UserMixin, current_user, login_required

from service.db import session_scope
from service.models import Admin
from service.team.admins import session_token

login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Log in to see that page."
login_manager.login_message_category = "info"
# A session used from another browser or address is dropped, not trusted.
login_manager.session_protection = "strong"
SESSION_HOURS = 12


@dataclass(frozen=True)
class AdminUser(UserMixin):
    """The logged-in admin, as Flask-Login sees it (no database session attached)."""

    admin_id: int
    email: str
    token: str

    def get_id(self) -> str:
        """What Flask-Login keeps in the session: id and a fingerprint of password and session version."""
        return f"{self.admin_id}:{self.token}"


def admin_required(view):
    """Login required: anonymous visitors are redirected to the admin login form."""
    return login_required(view)


def as_user(admin: Admin) -> AdminUser:
    """The session's view of an admin row."""
    return AdminUser(admin.id, admin.email, session_token(admin, current_app.config["SECRET_KEY"]))


@login_manager.user_loader
def _load_user(user_id: str) -> AdminUser | None:
    """The admin behind a session, if still active, with the same password and no logout since the login."""
    admin_id, _, token = user_id.partition(":")
    if not admin_id.isdigit():
        return None
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        admin = session.get(Admin, int(admin_id))
        user = as_user(admin) if admin is not None and admin.active else None
    return user if user is not None and user.token == token else None


def current_admin() -> AdminUser | None:
    """The logged-in admin, or None."""
    return current_user if getattr(current_user, "is_authenticated", False) else None


def init_auth(app: Flask) -> None:
    """Attach the login manager and the session lifetime to the app."""
    login_manager.init_app(app)
    # Set, not setdefault: Flask's own default (31 days) is always there, so setdefault never took effect.
    # Flask also refuses a session cookie older than this, whatever the browser kept.
    lifetime = timedelta(hours=SESSION_HOURS)
    app.config.update(PERMANENT_SESSION_LIFETIME=lifetime, REMEMBER_COOKIE_DURATION=lifetime,
                      REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
                      REMEMBER_COOKIE_SECURE=app.config["SESSION_COOKIE_SECURE"])
