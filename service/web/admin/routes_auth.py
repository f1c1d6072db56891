"""Login, logout and the admin home page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user

from service.audit import record
from service.db import session_scope
from service.outbox.pace import backlog
from service.team.admins import LoginRefused, attempt_login, log_out_everywhere
from service.web.admin.auth import admin_required, as_user, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import LoginForm
from service.web.admin.operations import home_counts


def _services():
    return current_app.config["KEEPWARM"]


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; throttled (throttle.py counts the 401s), audited, then a fresh session."""
    form = LoginForm()
    if current_admin() is not None:
        return redirect(url_for("admin.home"))
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form, error=None), 200 if request.method == "GET" else 400
    try:
        admin = attempt_login(_services().engine, form.email.data, form.password.data, ip=request.remote_addr or "")
    except LoginRefused as refused:
        return render_template("admin/login.html", form=form, error=str(refused)), 401
    _start_session(admin)
    return redirect(_safe_next(request.args.get("next")))


def _start_session(admin) -> None:
    """A fresh session on login: nothing set before login (a planted cookie) survives it."""
    session.clear()
    session.permanent = True
    login_user(as_user(admin))


def _safe_next(target: str | None) -> str:
    """Only a path on this site under /admin/: never an open redirect to another host."""
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and parts.path.startswith("/admin/") \
            and "\\" not in target:
        return target
    return url_for("admin.home")


@bp.post("/logout")
@admin_required
def logout():
    """End every session of this admin, copies of the cookie included (POST with CSRF: no link can log out)."""
    admin = current_admin()  # CSRFProtect has already refused a POST without a valid token
    with session_scope(_services().engine) as db:
        record(db, "logout", admin_id=admin.admin_id, actor=admin.email, target=admin.email)
    log_out_everywhere(_services().engine, admin.admin_id)
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("admin.login"))


@bp.get("/")
@admin_required
def home():
    """The overview: what needs an eye."""
    with session_scope(_services().engine) as db:
        counts = home_counts(db)
    return render_template("admin/home.html", counts=counts, backlog=backlog(_services()))
