"""The rep's links from the summary: cancel or postpone one scheduled customer email, or confirm the emails
held for an outcome (each a confirm page + POST: mail scanners follow links, never forms)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import IntegerField, SubmitField
from wtforms.validators import NumberRange, Optional

from service.db import session_scope
from service.models import OutboundEmail, Outcome
from service.outbox.actions import cancel as outbox_cancel
from service.outbox.actions import confirm as outbox_confirm
from service.outbox.actions import postpone as outbox_postpone
from service.tokens import Signer, TokenError
from service.web import no_store

bp = Blueprint("manage", __name__, url_prefix="/manage")
# The pages name the person behind a personal link and carry a CSRF token: never cached.
bp.after_request(no_store)
LINK_DAYS = 60


class ConfirmForm(FlaskForm):
    submit = SubmitField("Yes, send them")


class CancelForm(FlaskForm):
    submit = SubmitField("Cancel this email")


class PostponeForm(FlaskForm):
    days = IntegerField("Postpone by (days)", default=7, validators=[Optional(), NumberRange(min=1, max=365)])
    submit = SubmitField("Postpone")


def _row_id(token: str) -> int:
    payload = Signer(current_app.config["KEEPWARM"].settings).read("manage", token, max_age_days=LINK_DAYS)
    return int(payload["outbound"])


def _outcome_id(token: str) -> int:
    payload = Signer(current_app.config["KEEPWARM"].settings).read("confirm", token, max_age_days=LINK_DAYS)
    return int(payload["outcome"])


def _bad_link(error: TokenError):
    text = ("This link has expired. Open the newest summary email from Keepwarm to manage this email."
            if error.expired else "This link is not valid. Use the links in your Keepwarm summary email.")
    return render_template("message.html", title="Link not valid", text=text), 410 if error.expired else 400


@bp.route("/cancel/<token>", methods=["GET", "POST"])
def cancel(token: str):
    try:
        outbound_id = _row_id(token)
    except TokenError as error:
        return _bad_link(error)
    form = CancelForm()
    engine = current_app.config["KEEPWARM"].engine
    if form.validate_on_submit():
        outbox_cancel(engine, outbound_id, reason="canceled by the rep")  # the outbox owns the status
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        return render_template("manage.html", row=row, form=form, action="cancel")


@bp.route("/postpone/<token>", methods=["GET", "POST"])
def postpone(token: str):
    try:
        outbound_id = _row_id(token)
    except TokenError as error:
        return _bad_link(error)
    form = PostponeForm()
    engine = current_app.config["KEEPWARM"].engine
    if form.validate_on_submit():
        outbox_postpone(current_app.config["KEEPWARM"], outbound_id, days=form.days.data or 7)
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        return render_template("manage.html", row=row, form=form, action="postpone",
                               posted=request.method == "POST")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """The rep confirms what Keepwarm read: the outcome's held customer emails are scheduled."""
    try:
        outcome_id = _outcome_id(token)
    except TokenError as error:
        return _bad_link(error)
    form = ConfirmForm()
    released = 0
    services = current_app.config["KEEPWARM"]
    with session_scope(services.engine) as session:
        known = session.get(Outcome, outcome_id) is not None
    if known and form.validate_on_submit():
        released = outbox_confirm(services, outcome_id)
    with session_scope(services.engine) as session:
        outcome = session.get(Outcome, outcome_id)
        return render_template("confirm.html", outcome=outcome, held=_held_rows(session, outcome_id), form=form,
                               released=released, posted=request.method == "POST", debrief=_debrief_link(outcome))


def _held_rows(session, outcome_id: int) -> list[OutboundEmail]:
    return list(session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == outcome_id,
                                                         OutboundEmail.status == "held")
                             .order_by(OutboundEmail.due_at)))


def _debrief_link(outcome: Outcome | None) -> str:
    if outcome is None:
        return ""
    signer = Signer(current_app.config["KEEPWARM"].settings)
    return signer.url("/debrief", signer.make("debrief", {"outcome": outcome.id, "rep": outcome.rep_id}))
