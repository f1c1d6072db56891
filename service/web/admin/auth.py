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

from service.admins import session_token
from service.db import session_scope
from service.models import Admin

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
        """What Flask-Login keeps in the session: id and password fingerprint."""
        return f"{self.admin_id}:{self.token}"


def admin_required(view):
    """Login required: anonymous visitors are redirected to the admin login form."""
    return login_required(view)


def as_user(admin: Admin) -> AdminUser:
    """The session's view of an admin row."""
    return AdminUser(admin.id, admin.email, session_token(admin, current_app.config["SECRET_KEY"]))


@login_manager.user_loader
def _load_user(user_id: str) -> AdminUser | None:
    """The admin behind a session, if still active and with the same password as at login."""
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
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=SESSION_HOURS))
