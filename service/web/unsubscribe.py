"""Unsubscribe: a one-click POST (RFC 8058: no cookies, no CSRF) and a GET page with a confirm button, both in the
language of the email the customer came from (the link carries it; an older link without it: the browser's)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_babel import gettext as _

from service.db import session_scope
from service.outbox.status import is_suppressed, suppress
from service.tokens import Signer, TokenError
from service.web import no_store
from service.web.i18n import use_language

bp = Blueprint("unsubscribe", __name__, url_prefix="/unsubscribe")
# The page names the person behind a personal link: never cached.
bp.after_request(no_store)


def _address(token: str) -> str:
    """The customer's address, and the page set in the language of their email."""
    services = current_app.config["KEEPWARM"]
    payload = Signer(services.settings).read("unsubscribe", token)
    use_language(payload.get("lang"))
    return payload["email"]


@bp.get("/<token>")
def confirm(token: str):
    try:
        email = _address(token)
    except TokenError:
        return render_template("message.html", title=_("Link not valid"),
                               text=_("This unsubscribe link is not valid. Reply to the email you received and "
                                      "ask to be removed: a person will do it.")), 400
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        done = is_suppressed(session, email)
    return render_template("unsubscribe.html", email=email, token=token, done=done)


@bp.post("/<token>")
def one_click(token: str):
    try:
        email = _address(token)
    except TokenError:
        return render_template("message.html", title=_("Link not valid"),
                               text=_("This unsubscribe link is not valid.")), 400
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        suppress(session, email, "unsubscribed (link)")
    return render_template("unsubscribe.html", email=email, token=token, done=True)
