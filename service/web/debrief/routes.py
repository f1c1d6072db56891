"""/debrief/<token>: the form, the saved answers, and the live preview of the recontact."""

from __future__ import annotations

from contextlib import suppress

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError

from service.db import session_scope
from service.models import Rep
from service.outbox.schedule import enqueue_or_defer
from service.pipeline.debrief import Answers, prefill, preview, save_debrief
from service.team.feeds import feed_url
from service.tokens import Signer
from service.web.debrief.forms import DebriefForm, form_data
from service.web.debrief.pages import LinkProblem, answer_lines, opened, page_for, preview_view, saved_text

bp = Blueprint("debrief", __name__, url_prefix="/debrief")


@bp.errorhandler(LinkProblem)
def link_problem(error: LinkProblem):
    return render_template("debrief/problem.html", title=error.title, text=error.text), error.status


@bp.errorhandler(CSRFError)
def form_expired(_error: CSRFError):
    _speak_as_the_link((request.view_args or {}).get("token", ""))
    return render_template("debrief/problem.html", title=_("Your answers were not saved"),
                           text=_("The page's security check failed: it may have been opened in another browser, "
                                  "or cookies are blocked. Open the debrief link from your summary email again and "
                                  "send the form once more.")), 400


def _speak_as_the_link(token: str) -> None:
    """The page in the rep's language when the link still opens their meeting (else the browser's)."""
    services = current_app.config["KEEPWARM"]
    with session_scope(services.engine) as session, suppress(LinkProblem):
        opened(session, services.settings, token)


@bp.get("/<token>")
def show(token: str):
    services = current_app.config["KEEPWARM"]
    with session_scope(services.engine) as session:
        outcome = opened(session, services.settings, token)
        page = page_for(session, services.settings, outcome)
        if page.debrief is not None and not request.args.get("edit"):
            return render_template("debrief/summary.html", page=page, token=token, saved=request.args.get("saved"),
                                   lines=answer_lines(Answers.from_json(page.debrief.answers), page.language),
                                   saved_text=saved_text(page),
                                   calendar=feed_url(Signer(services.settings), session.get(Rep, outcome.rep_id)))
        answers = prefill(session, outcome)
        form = _form(page, answers, data=form_data(answers))
        shown = preview_view(preview(session, services.settings, outcome, answers), page.language)
        return render_template("debrief/form.html", page=page, form=form, token=token, preview=shown)


@bp.get("/assets/debrief.js")
def script():
    """The form's small script, served from here so that it is 'self' for the Content-Security-Policy."""
    source, _path, _uptodate = current_app.jinja_env.loader.get_source(current_app.jinja_env, "debrief/debrief.js")
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.after_request
def _private(response):
    """The URL is the rep's key: never cached, never sent on as a Referer, never indexed."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/<token>")
def submit(token: str):
    try:
        return _submit(token)
    except IntegrityError:  # a double click: the other request saved the debrief first, so show that one
        return redirect(url_for(".show", token=token, saved=1), code=303)


def _submit(token: str):
    services = current_app.config["KEEPWARM"]
    with session_scope(services.engine) as session:
        outcome = opened(session, services.settings, token)
        page = page_for(session, services.settings, outcome)
        form = _form(page, prefill(session, outcome))
        if not form.validate() or form.preview.data:
            shown = preview_view(preview(session, services.settings, outcome, form.answers()), page.language) \
                if not form.errors else None
            return render_template("debrief/form.html", page=page, form=form, token=token,
                                   preview=shown), 422 if form.errors else 200
        saved = save_debrief(session, services.settings, outcome, form.answers())
    enqueue_or_defer(services, saved.planned)
    return redirect(url_for(".show", token=token, saved=1), code=303)


@bp.post("/<token>/preview")
def preview_fragment(token: str):
    """The preview alone, for the page's script to refresh as the rep types; nothing is saved."""
    services = current_app.config["KEEPWARM"]
    with session_scope(services.engine) as session:
        outcome = opened(session, services.settings, token)
        page = page_for(session, services.settings, outcome)
        form = _form(page, prefill(session, outcome))
        valid = form.validate()
        shown = preview_view(preview(session, services.settings, outcome, form.answers()), page.language) \
            if valid else None
        return render_template("debrief/_preview.html", preview=shown, problem=None if valid else form.errors)


def _form(page, answers: Answers, **kwargs) -> DebriefForm:
    """The form, knowing today (the rep's) and the saved date that may stay even once past."""
    saved_date = answers.recontact_on if page.debrief is not None else None
    return DebriefForm(today=page.today, saved_date=saved_date, **kwargs)
