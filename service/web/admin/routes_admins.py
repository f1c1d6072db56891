"""Admins: invite one, make a password reset link; and the public page such a link opens to set the password.

The link is shown to the admin who made it, who passes it on: Keepwarm does not email it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from service.db import session_scope
from service.team.admins import (
    EXPIRED,
    INVITE,
    PASSWORD_LINK_DAYS,
    RESET,
    USED,
    LinkRefused,
    admin_for_link,
    every_admin,
    invite_admin,
    password_link_token,
    reset_admin,
    set_password_by_link,
)
from service.tokens import Signer
from service.web.admin.auth import admin_required, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import ActionForm, InviteForm, NewPasswordForm

KINDS = {INVITE: "invite", RESET: "reset"}  # a link's purpose and the word for it in its URL
REFUSALS = {EXPIRED: ("Link expired", 410), USED: ("Link already used", 410)}


def _services():
    return current_app.config["KEEPWARM"]


@bp.route("/admins", methods=["GET", "POST"])
@admin_required
def admins():
    """The admins, and a form that makes an invitation link for a new one."""
    form, link, error = InviteForm(), None, None
    if form.validate_on_submit():
        actor = current_admin()
        try:
            invited = invite_admin(_services().engine, form.email.data, actor_id=actor.admin_id, actor=actor.email)
        except ValueError as refused:
            error = str(refused)
        else:
            form, link = InviteForm(formdata=None), _link(invited, INVITE)  # an empty form for the next one
    failed = bool(error or form.errors)
    return _admins_page(form, link=link, error=error), 422 if failed else 200


@bp.post("/admins/<int:admin_id>/reset")
@admin_required
def admin_reset(admin_id: int):
    """A link to set a new password (an invitation again for an admin who never set one)."""
    actor = current_admin()
    try:
        admin, purpose = reset_admin(_services().engine, admin_id, actor_id=actor.admin_id, actor=actor.email)
    except LookupError:
        abort(404)
    return _admins_page(InviteForm(formdata=None), link=_link(admin, purpose))


def _link(admin, purpose: str) -> dict:
    """What the page shows of a new link: for whom, what for, the URL and until when it works."""
    signer = Signer(_services().settings)
    url = signer.url(f"/admin/password/{KINDS[purpose]}", password_link_token(signer, admin, purpose))
    return {"email": admin.email, "kind": KINDS[purpose], "url": url,
            "expires": datetime.now(UTC) + timedelta(days=PASSWORD_LINK_DAYS)}


def _admins_page(form: InviteForm, *, link: dict | None = None, error: str | None = None) -> str:
    with session_scope(_services().engine) as session:
        rows = every_admin(session)
    return render_template("admin/admins.html", form=form, rows=rows, link=link, error=error, action=ActionForm(),
                           days=PASSWORD_LINK_DAYS)


@bp.route("/password/<any(invite,reset):kind>/<token>", methods=["GET", "POST"])
def set_password(kind: str, token: str):
    """Public (the signed link is the key): the new password, then the login form."""
    purpose = INVITE if kind == "invite" else RESET
    signer = Signer(_services().settings)
    with session_scope(_services().engine) as session:
        try:
            email = admin_for_link(session, signer, purpose, token).email
        except LinkRefused as refused:
            return _refused(refused)
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            set_password_by_link(_services().engine, signer, purpose, token, form.password.data)
        except LinkRefused as refused:
            return _refused(refused)
        flash("Your password is set: log in with it.", "success")
        return redirect(url_for("admin.login"))
    status = 422 if request.method == "POST" else 200
    return _keyed(render_template("admin/set_password.html", form=form, email=email, kind=kind), status)


def _refused(refused: LinkRefused):
    title, status = REFUSALS.get(str(refused), ("Link not valid", 400))
    return _keyed(render_template("admin/error.html", title=title,
                                  text=f"{refused} Ask an admin for a new link."), status)


def _keyed(body: str, status: int):
    """A page whose URL is a key: never sent on as a Referer, never indexed."""
    return body, status, {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
