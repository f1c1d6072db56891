"""The rep's links from the summary: cancel or postpone one scheduled customer email (confirm page + POST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, current_app, render_template, request
from flask_wtf import FlaskForm
from wtforms import IntegerField, SubmitField
from wtforms.validators import NumberRange, Optional

from service.db import session_scope
from service.models import OutboundEmail
from service.tokens import Signer, TokenError

bp = Blueprint("manage", __name__, url_prefix="/manage")
LINK_DAYS = 60


class CancelForm(FlaskForm):
    submit = SubmitField("Cancel this email")


class PostponeForm(FlaskForm):
    days = IntegerField("Postpone by (days)", default=7, validators=[Optional(), NumberRange(min=1, max=365)])
    submit = SubmitField("Postpone")


def _row_id(token: str) -> int:
    payload = Signer(current_app.config["KEEPWARM"].settings).read("manage", token, max_age_days=LINK_DAYS)
    return int(payload["outbound"])


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
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if row is not None and form.validate_on_submit() and row.status == "scheduled":
            row.status, row.canceled_reason, row.updated_at = "canceled", "canceled by the rep", datetime.now(UTC)
        return render_template("manage.html", row=row, form=form, action="cancel")


@bp.route("/postpone/<token>", methods=["GET", "POST"])
def postpone(token: str):
    try:
        outbound_id = _row_id(token)
    except TokenError as error:
        return _bad_link(error)
    form = PostponeForm()
    moved = None
    with session_scope(current_app.config["KEEPWARM"].engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if row is not None and form.validate_on_submit() and row.status == "scheduled":
            row.due_at = max(row.due_at, datetime.now(UTC)) + timedelta(days=form.days.data or 7)
            row.updated_at, moved = datetime.now(UTC), row.due_at
    if moved is not None:
        _reschedule(outbound_id, moved)
    return render_template("manage.html", row=row, form=form, action="postpone",
                           posted=request.method == "POST")


def _reschedule(outbound_id: int, due_at: datetime) -> None:
    from service.intake.inbox import enqueue_planned

    enqueue_planned(current_app.config["KEEPWARM"], [(outbound_id, due_at)])
