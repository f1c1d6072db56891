"""The rep's links from the summary: cancel or postpone one scheduled customer email, or confirm the emails
held for an outcome (each a confirm page + POST: mail scanners follow links, never forms)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import IntegerField, SubmitField
from wtforms.validators import NumberRange, Optional

from service.db import session_scope
from service.models import OutboundEmail, Outcome
from service.outbox.actions import cancel as outbox_cancel
from service.outbox.actions import confirm as outbox_confirm
from service.outbox.actions import postpone as outbox_postpone
from service.outbox.template_context import KIND_WORDS, held_words
from service.tokens import Signer, TokenError
from service.web import no_store
from service.web.debrief.labels import STATUS_LABELS, reason_text
from service.web.i18n import use_language

bp = Blueprint("manage", __name__, url_prefix="/manage")
# The pages name the person behind a personal link and carry a CSRF token: never cached.
bp.after_request(no_store)
LINK_DAYS = 60


class ConfirmForm(FlaskForm):
    submit = SubmitField(_l("Yes, send them"))


class CancelForm(FlaskForm):
    submit = SubmitField(_l("Cancel this email"))


class PostponeForm(FlaskForm):
    days = IntegerField(_l("Postpone by (days)"), default=7, validators=[Optional(), NumberRange(min=1, max=365)])
    submit = SubmitField(_l("Postpone"))


def _row_id(token: str) -> int:
    payload = Signer(current_app.config["KEEPWARM"].settings).read("manage", token, max_age_days=LINK_DAYS)
    return int(payload["outbound"])


def _outcome_id(token: str) -> int:
    payload = Signer(current_app.config["KEEPWARM"].settings).read("confirm", token, max_age_days=LINK_DAYS)
    return int(payload["outcome"])


def _bad_link(error: TokenError):
    """The link opens nothing: the page in the browser's language."""
    text = (_("This link has expired. Open the newest summary email from Keepwarm to manage this email.")
            if error.expired else _("This link is not valid. Use the links in your Keepwarm summary email."))
    return render_template("message.html", title=_("Link not valid"), text=text), 410 if error.expired else 400


def _speak_as_the_summary(engine, *, outbound_id: int | None = None, outcome_id: int | None = None) -> str:
    """The rep's page in the language of the summary it came from (the outcome's, else the email's own), set before
    the form is read so its messages speak it too; the browser's when the row is gone. Returns the language of the
    page's kind words."""
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id) if outbound_id else None
        outcome_id = row.outcome_id if row else outcome_id
        outcome = session.get(Outcome, outcome_id) if outcome_id else None
        language = outcome.language if outcome else (row.language if row else None)
    use_language(language)
    return language if language in KIND_WORDS else "en"


def _words(language: str) -> dict:
    """Kind, status and reason words for the page, in its language."""
    return {"kinds": KIND_WORDS[language], "statuses": STATUS_LABELS, "reason_text": reason_text}


@bp.route("/cancel/<token>", methods=["GET", "POST"])
def cancel(token: str):
    try:
        outbound_id = _row_id(token)
    except TokenError as error:
        return _bad_link(error)
    engine = current_app.config["KEEPWARM"].engine
    language = _speak_as_the_summary(engine, outbound_id=outbound_id)
    form = CancelForm()
    if form.validate_on_submit():
        outbox_cancel(engine, outbound_id, reason="canceled by the rep")  # the outbox owns the status
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        return render_template("manage.html", row=row, form=form, action="cancel", **_words(language))


@bp.route("/postpone/<token>", methods=["GET", "POST"])
def postpone(token: str):
    try:
        outbound_id = _row_id(token)
    except TokenError as error:
        return _bad_link(error)
    engine = current_app.config["KEEPWARM"].engine
    language = _speak_as_the_summary(engine, outbound_id=outbound_id)
    form = PostponeForm()
    if form.validate_on_submit():
        outbox_postpone(current_app.config["KEEPWARM"], outbound_id, days=form.days.data or 7)
    with session_scope(engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        return render_template("manage.html", row=row, form=form, action="postpone",
                               posted=request.method == "POST", **_words(language))


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """The rep confirms what Keepwarm read: the outcome's held customer emails are scheduled."""
    try:
        outcome_id = _outcome_id(token)
    except TokenError as error:
        return _bad_link(error)
    released = 0
    services = current_app.config["KEEPWARM"]
    language = _speak_as_the_summary(services.engine, outcome_id=outcome_id)
    form = ConfirmForm()
    with session_scope(services.engine) as session:
        known = session.get(Outcome, outcome_id) is not None
    if known and form.validate_on_submit():
        released = outbox_confirm(services, outcome_id)
    with session_scope(services.engine) as session:
        outcome = session.get(Outcome, outcome_id)
        held_reason = held_words(outcome.held_reason or "", language) if outcome else ""
        return render_template("confirm.html", outcome=outcome, held=_held_rows(session, outcome_id), form=form,
                               released=released, posted=request.method == "POST", debrief=_debrief_link(outcome),
                               held_reason=held_reason, **_words(language))


def _held_rows(session, outcome_id: int) -> list[OutboundEmail]:
    return list(session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == outcome_id,
                                                         OutboundEmail.status == "held")
                             .order_by(OutboundEmail.due_at)))


def _debrief_link(outcome: Outcome | None) -> str:
    if outcome is None:
        return ""
    signer = Signer(current_app.config["KEEPWARM"].settings)
    return signer.url("/debrief", signer.make("debrief", {"outcome": outcome.id, "rep": outcome.rep_id}))
