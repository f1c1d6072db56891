"""Unsubscribe: a one-click POST (RFC 8058: no cookies, no CSRF) and a GET page with a confirm button."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from service.db import session_scope
from service.outbox.status import is_suppressed, suppress
from service.tokens import Signer, TokenError
from service.web import no_store

bp = Blueprint("unsubscribe", __name__, url_prefix="/unsubscribe")
# The page names the person behind a personal link: never cached.
bp.after_request(no_store)


def _address(token: str) -> str:
    services = current_app.config["KEEPWARM"]
    return Signer(services.settings).read("unsubscribe", token)["email"]


@bp.get("/<token>")
def confirm(token: str):
    try:
        email = _address(token)
    except TokenError:
        return render_template("message.html", title="Link not valid",
                               text="This unsubscribe link is not valid. Reply to the email you received and ask "
                                    "to be removed: a person will do it."), 400
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        done = is_suppressed(session, email)
    return render_template("unsubscribe.html", email=email, token=token, done=done)


@bp.post("/<token>")
def one_click(token: str):
    try:
        email = _address(token)
    except TokenError:
        return render_template("message.html", title="Link not valid",
                               text="This unsubscribe link is not valid."), 400
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        suppress(session, email, "unsubscribed (link)")
    return render_template("unsubscribe.html", email=email, token=token, done=True)
