"""Email templates: the list, the editor with live preview, history, diff, revert and a test send."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from service.db import session_scope
from service.outbox.templates import RenderError, TemplateSource, placeholders
from service.outbox.transport import PermanentSendError, TransientSendError
from service.settings import SettingsError
from service.web.admin import catalog
from service.web.admin.auth import admin_required, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import ActionForm, TemplateForm

KEY = "/templates/<kind>/<variant>/<language>"


def _services():
    return current_app.config["KEEPWARM"]


def _key(kind: str, variant: str, language: str) -> catalog.TemplateKey:
    key = catalog.find_key(kind, variant, language)
    if key is None:
        abort(404)
    return key


def _source(form: TemplateForm) -> TemplateSource:
    return TemplateSource(_lf(form.subject.data).strip(), _lf(form.text.data), _lf(form.html.data))


def _lf(text: str | None) -> str:
    """Browsers send textareas with CRLF line ends: stored as LF so diffs do not change by accident."""
    return (text or "").replace("\r\n", "\n")


@bp.get("/templates/")
@admin_required
def templates():
    """Every template key with the version in use."""
    with session_scope(_services().engine) as session:
        rows = catalog.overview(session)
    return render_template("admin/templates.html", rows=rows, languages=catalog.LANGUAGE_LABELS)


@bp.get(KEY)
@admin_required
def template_edit(kind: str, variant: str, language: str):
    """The editor with the version in use (or ?version=N), preview, placeholders and history."""
    key = _key(kind, variant, language)
    with session_scope(_services().engine) as session:
        shown = catalog.current(session, key)
        number = request.args.get("version", type=int)
        if number is not None:
            shown = catalog.version(session, key, number) or abort(404)
        form = TemplateForm(data={"subject": shown.source.subject, "text": shown.source.text,
                                  "html": shown.source.html})
        return _editor(session, key, form, shown=shown)


def _editor(session, key, form, *, shown=None, problems=(), status=200):
    form.sample.choices = [SelectChoice(value, label) for value, label in catalog.preview_choices(session, key)]
    page = render_template("admin/template_edit.html", key=key, form=form, shown=shown, problems=problems,
                           history=catalog.history(session, key), current=catalog.current(session, key),
                           reference=placeholders(catalog.preview_context(session, _services().settings, key,
                                                                          form.sample.data)[1]),
                           action=ActionForm(), languages=catalog.LANGUAGE_LABELS)
    return page, status


@bp.post(KEY)
@admin_required
def template_save(kind: str, variant: str, language: str):
    """Save a new version: active if it passes every check, else kept inactive with the reasons."""
    key = _key(kind, variant, language)
    form = TemplateForm()
    with session_scope(_services().engine) as session:
        if not form.validate_on_submit():
            return _editor(session, key, form, status=400)
        saved, problems = catalog.save(session, _services().settings, key, _source(form), current_admin())
    if problems:
        with session_scope(_services().engine) as session:
            return _editor(session, key, form, shown=saved, problems=problems, status=422)
    flash(f"Version {saved.number} saved and active.", "success")
    return redirect(url_for("admin.template_edit", kind=kind, variant=variant, language=language))


@bp.post(f"{KEY}/preview")
@admin_required
def template_preview(kind: str, variant: str, language: str):
    """The htmx live preview: a fragment with both parts, or the problems."""
    key = _key(kind, variant, language)
    form = TemplateForm()
    with session_scope(_services().engine) as session:
        label, context = catalog.preview_context(session, _services().settings, key, form.sample.data)
    try:
        rendered, problems = catalog.preview(_source(form), label, context)
    except RenderError as error:
        rendered, problems = None, [str(error)]
    return render_template("admin/_preview.html", rendered=rendered, problems=problems, label=label)


@bp.post(f"{KEY}/test")
@admin_required
def template_test(kind: str, variant: str, language: str):
    """Render the editor's content with the sample and email it to the logged-in admin."""
    key = _key(kind, variant, language)
    form = TemplateForm()
    admin = current_admin()
    with session_scope(_services().engine) as session:
        if not form.validate_on_submit():
            return _editor(session, key, form, status=400)
        problems = _send_test(session, key, form, admin)
        if problems:
            return _editor(session, key, form, problems=problems, status=422)
    flash(f"A test email was sent to {admin.email}.", "success")
    return _editor_again(key, form)


def _send_test(session, key, form, admin) -> list:
    try:
        return catalog.send_test(session, _services().settings, key, _source(form), admin)
    except (SettingsError, TransientSendError, PermanentSendError, ValueError) as error:
        return [f"The test could not be sent: {error}"]


def _editor_again(key, form):
    """After a test the editor keeps what was typed (it may not be saved yet)."""
    with session_scope(_services().engine) as session:
        return _editor(session, key, form)


@bp.post(f"{KEY}/revert/<int:number>")
@admin_required
def template_revert(kind: str, variant: str, language: str, number: int):
    """A new version copying an old one (checked like any save)."""
    key = _key(kind, variant, language)
    with session_scope(_services().engine) as session:
        try:
            saved, problems = catalog.revert(session, _services().settings, key, number, current_admin())
        except LookupError:
            abort(404)
    if problems:
        flash(f"Version {number} no longer passes the checks; kept as version {saved.number}, not active: "
              f"{problems[0]}", "error")
    else:
        flash(f"Version {number} restored as version {saved.number}.", "success")
    return redirect(url_for("admin.template_edit", kind=kind, variant=variant, language=language))


@bp.get(f"{KEY}/diff")
@admin_required
def template_diff(kind: str, variant: str, language: str):
    """What changed between two versions (?a=old&b=new; default: the newest two)."""
    key = _key(kind, variant, language)
    with session_scope(_services().engine) as session:
        numbers = [v.number for v in catalog.history(session, key)]
        new = request.args.get("b", type=int, default=numbers[0])
        old = request.args.get("a", type=int, default=numbers[1] if len(numbers) > 1 else 0)
        old_version, new_version = catalog.version(session, key, old), catalog.version(session, key, new)
    if old_version is None or new_version is None:
        abort(404)
    return render_template("admin/template_diff.html", key=key, old=old_version, new=new_version, numbers=numbers,
                           lines=catalog.diff_lines(old_version, new_version), languages=catalog.LANGUAGE_LABELS)
