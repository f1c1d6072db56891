"""Settings: the planning policy, the sending identity (read-only), reps, and the suppression list."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from service.db import session_scope
from service.models import Suppression
from service.planning.policy import current_policy
from service.team.rep_import import ImportRefused
from service.web.admin import operations, policy, roster
from service.web.admin.auth import admin_required, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import (
    MAX_REPS_CSV_BYTES,
    ActionForm,
    AliasForm,
    PolicyForm,
    RepForm,
    RepImportConfirmForm,
    RepImportForm,
    SuppressionForm,
)

ZONES = sorted(available_timezones())


def _services():
    return current_app.config["KEEPWARM"]


# ---------------------------------------------------------------------------------------------------- policy


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    """The planning policy (saved as a new PolicyRecord) and the sending identity."""
    form = PolicyForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        saved, errors = policy.validate(policy.read_form(form))
        if saved is not None:
            with session_scope(_services().engine) as session:
                policy.save(session, saved, current_admin())
            flash("The policy is saved: it applies to emails planned from now on.", "success")
            return redirect(url_for("admin.settings"))
    elif form.is_submitted():  # a value the form itself refuses (a weekday that does not exist)
        errors = {name: messages[0] for name, messages in form.errors.items()}
    else:
        with session_scope(_services().engine) as session:
            form.process(data=policy.form_data(current_policy(session)))
    return render_template("admin/settings.html", form=form, errors=errors, identity=_services().settings,
                           reasons=policy.REASONS), 422 if errors else 200


# ---------------------------------------------------------------------------------------------------- reps


@bp.route("/reps", methods=["GET", "POST"])
@admin_required
def reps():
    """The reps, and a form to add one."""
    form = RepForm(data={"timezone": _services().settings.timezone, "active": True})
    error = _save_rep(form) if form.validate_on_submit() else None
    if form.is_submitted() and error is None and not form.errors:
        flash(f"Rep {form.email.data} saved.", "success")
        return redirect(url_for("admin.reps"))
    with session_scope(_services().engine) as session:
        rows = roster.reps(session)
    return render_template("admin/reps.html", form=form, rows=rows, error=error, zones=ZONES,
                           action=ActionForm(), import_form=RepImportForm()), 422 if form.is_submitted() else 200


def _save_rep(form, rep_id: int | None = None) -> str | None:
    try:
        roster.save(_services().engine, form, current_admin(), rep_id=rep_id,
                    intake_address=_services().settings.intake_address)
    except (ValueError, LookupError) as error:
        return str(error)
    return None


@bp.route("/reps/<int:rep_id>", methods=["GET", "POST"])
@admin_required
def rep_edit(rep_id: int):
    """One rep: name, time zone, status and alternative addresses."""
    with session_scope(_services().engine) as session:
        found = roster.rep_with_aliases(session, rep_id) or abort(404)
    rep, aliases = found
    form = RepForm(data={"email": rep.email, "name": rep.name, "timezone": rep.timezone, "active": rep.active,
                         "language": rep.language or ""})
    form.email.data = rep.email  # the address is the rep's identity: never changed from the form
    error = _save_rep(form, rep_id) if form.validate_on_submit() else None
    if form.is_submitted() and error is None and not form.errors:
        flash(f"Rep {rep.email} saved.", "success")
        return redirect(url_for("admin.rep_edit", rep_id=rep_id))
    return render_template("admin/rep_edit.html", form=form, rep=rep, aliases=aliases, error=error, zones=ZONES,
                           alias_form=AliasForm(), action=ActionForm(),
                           calendar=roster.calendar_link(_services(), rep)), 422 if form.is_submitted() else 200


@bp.post("/reps/<int:rep_id>/calendar/revoke")
@admin_required
def rep_calendar_revoke(rep_id: int):
    """A new calendar feed URL for the rep; the old one stops working."""
    if ActionForm().validate_on_submit():
        with session_scope(_services().engine) as session:
            rep = roster.revoke_calendar(session, rep_id, current_admin()) or abort(404)
            flash(f"The calendar URL of {rep.email} is revoked: give them the new one below.", "success")
    return redirect(url_for("admin.rep_edit", rep_id=rep_id, _anchor="calendar"))


@bp.post("/reps/import")
@admin_required
def reps_import():
    """A CSV file of reps checked row by row (nothing written), with a button to write the good rows."""
    form = RepImportForm()
    if not form.validate_on_submit():
        return _import_page(problem=_first_error(form), status=422)
    data = form.file.data.read(MAX_REPS_CSV_BYTES + 1)
    return _import_step(data, dry_run=True)


@bp.post("/reps/import/confirm")
@admin_required
def reps_import_confirm():
    """The previewed file again: checked anew against the database, and its good rows written."""
    form = RepImportConfirmForm()
    if not form.validate_on_submit():
        return _import_page(problem=_first_error(form), status=422)
    return _import_step(form.csv_text.data.encode("utf-8"), dry_run=False)


def _import_step(data: bytes, *, dry_run: bool):
    try:
        report = roster.import_csv(_services(), data, current_admin(), dry_run=dry_run)
    except ImportRefused as refused:
        return _import_page(problem=str(refused), status=422)
    confirm = RepImportConfirmForm(data={"csv_text": data.decode("utf-8")}) if dry_run else None
    if not dry_run:
        flash(f"Import done: {report.summary()}.", "success")
    return _import_page(report=report, confirm=confirm)


def _import_page(*, report=None, confirm=None, problem: str | None = None, status: int = 200):
    return render_template("admin/reps_import.html", report=report, confirm=confirm, problem=problem,
                           import_form=RepImportForm()), status


def _first_error(form) -> str:
    messages = [message for errors in form.errors.values() for message in errors]
    return messages[0] if messages else "The form was not valid: try again."


@bp.post("/reps/<int:rep_id>/<any(enable,disable):change>")
@admin_required
def rep_toggle(rep_id: int, change: str):
    """Enable or disable a rep."""
    with session_scope(_services().engine) as session:
        rep = roster.set_active(session, rep_id, change == "enable", current_admin()) or abort(404)
        flash(f"Rep {rep.email} {'enabled' if rep.active else 'disabled'}.", "success")
    if request.form.get("back") == "edit":
        return redirect(url_for("admin.rep_edit", rep_id=rep_id))
    return redirect(url_for("admin.reps"))


@bp.post("/reps/<int:rep_id>/aliases/remove")
@admin_required
def rep_alias_remove(rep_id: int):
    """Remove one alternative address."""
    form = AliasForm()
    if form.validate_on_submit():
        with session_scope(_services().engine) as session:
            if roster.remove_alias(session, rep_id, form.alias.data, current_admin()):
                flash(f"{form.alias.data} removed.", "success")
    return redirect(url_for("admin.rep_edit", rep_id=rep_id))


# ---------------------------------------------------------------------------------------------------- suppression


@bp.route("/suppression", methods=["GET", "POST"])
@admin_required
def suppression():
    """The suppression list, a search and a form to add an address."""
    form = SuppressionForm()
    if form.validate_on_submit():
        with session_scope(_services().engine) as session:
            canceled = roster.add_suppression(session, form.email.data, form.reason.data, current_admin())
        flash(f"{form.email.data} suppressed; {canceled} scheduled emails canceled.", "success")
        return redirect(url_for("admin.suppression"))
    search = request.args.get("q", "")[:200]
    with session_scope(_services().engine) as session:
        rows = roster.suppressions(session, search)
        undeliverable = roster.undeliverable(session, search)
    return render_template("admin/suppression.html", form=form, rows=rows, search=search,
                           undeliverable=undeliverable, action=ActionForm(),
                           limit=roster.SUPPRESSION_PAGE), 422 if form.errors else 200


@bp.post("/customers/<int:customer_id>/deliverable")
@admin_required
def customer_deliverable(customer_id: int):
    """Take a customer's undeliverable mark off; their emails still to come are scheduled again."""
    flash(operations.clear_undeliverable(_services(), customer_id, current_admin()), "success")
    return redirect(url_for("admin.suppression", _anchor="undeliverable"))


@bp.route("/suppression/<int:suppression_id>/remove", methods=["GET", "POST"])
@admin_required
def suppression_remove(suppression_id: int):
    """GET asks for confirmation; POST removes."""
    form = ActionForm()
    with session_scope(_services().engine) as session:
        if form.validate_on_submit():
            row = roster.remove_suppression(session, suppression_id, current_admin()) or abort(404)
            flash(f"{row.email} removed from the suppression list: future plans may write to it again.", "success")
            return redirect(url_for("admin.suppression"))
        row = session.get(Suppression, suppression_id) or abort(404)
        return render_template("admin/suppression_remove.html", row=row, form=form)
