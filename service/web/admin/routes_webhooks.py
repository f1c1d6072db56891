"""Webhooks: register an endpoint (its secret shown once), switch it off and on, roll its secret, remove it; its
delivery log with a "redeliver" button. Every change is in the audit log; no secret ever is."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from service.audit import record
from service.db import session_scope
from service.models import WEBHOOK_DELIVERY_STATUSES, WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from service.web.admin.auth import admin_required, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import ActionForm, WebhookForm
from service.webhooks import endpoints
from service.webhooks.addresses import RefusedAddress
from service.webhooks.signing import HEADER


def _services():
    return current_app.config["KEEPWARM"]


def _form(formdata=...) -> WebhookForm:
    form = WebhookForm() if formdata is ... else WebhookForm(formdata=formdata)
    form.events.choices = [(e, e) for e in WEBHOOK_EVENTS]
    return form


def _audit(session, action: str, endpoint: WebhookEndpoint, **detail) -> None:
    actor = current_admin()
    record(session, action, admin_id=actor.admin_id, actor=actor.email, target=f"webhook {endpoint.id}",
           detail={"url": endpoint.url, **detail})


@bp.route("/webhooks", methods=["GET", "POST"])
@admin_required
def webhooks():
    """The endpoints, and a form to register one; a new one's secret is on this answer, and nowhere after."""
    form, created, error = _form(), None, None
    if form.validate_on_submit():
        try:
            with session_scope(_services().engine) as session:
                endpoint, secret = endpoints.create_endpoint(
                    session, _services().settings, form.url.data, form.events.data,
                    description=form.description.data or "", actor=current_admin().email)
                _audit(session, "webhook.create", endpoint, events=endpoint.events)
                created = {"id": endpoint.id, "url": endpoint.url, "secret": secret}
        except (RefusedAddress, ValueError) as refused:
            error = str(refused)
        else:
            form = _form(formdata=None)
    failed = bool(error or form.errors)
    return _page(form, created=created, error=error), 422 if failed else 200


def _page(form: WebhookForm, *, created: dict | None = None, error: str | None = None) -> str:
    with session_scope(_services().engine) as session:
        rows = endpoints.every_endpoint(session)
    return render_template("admin/webhooks.html", form=form, rows=rows, created=created, error=error,
                           action=ActionForm(), header=HEADER, events=WEBHOOK_EVENTS)


@bp.get("/webhooks/<int:endpoint_id>")
@admin_required
def webhook(endpoint_id: int):
    """One endpoint and its delivery log (newest first), filtered by status."""
    status = request.args.get("status") if request.args.get("status") in WEBHOOK_DELIVERY_STATUSES else None
    with session_scope(_services().engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id) or abort(404)
        log = endpoints.delivery_log(session, endpoint_id, status=status)
    return render_template("admin/webhook.html", endpoint=endpoint, log=log, status=status,
                           statuses=WEBHOOK_DELIVERY_STATUSES, action=ActionForm(), limit=endpoints.LOG_LIMIT,
                           secret=None)


@bp.post("/webhooks/<int:endpoint_id>/<any(disable,enable,delete,roll):change>")
@admin_required
def webhook_act(endpoint_id: int, change: str):
    """Switch the endpoint off or on, remove it, or give it a new secret (shown once, on the answer)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with session_scope(_services().engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id) or abort(404)
        if change == "roll":
            secret = endpoints.roll_secret(session, _services().settings, endpoint)
            _audit(session, "webhook.roll_secret", endpoint)
            log = endpoints.delivery_log(session, endpoint_id)
            return render_template("admin/webhook.html", endpoint=endpoint, log=log, status=None,
                                   statuses=WEBHOOK_DELIVERY_STATUSES, action=ActionForm(),
                                   limit=endpoints.LOG_LIMIT, secret=secret)
        _audit(session, f"webhook.{change}", endpoint)
        if change == "delete":
            gone = endpoints.delete_endpoint(session, endpoint)
            flash(f"Endpoint removed, with its {gone} deliveries.", "success")
            return redirect(url_for("admin.webhooks"))
        endpoints.set_active(session, endpoint, change == "enable")
    flash("Endpoint enabled: what waited is on its way." if change == "enable"
          else "Endpoint disabled: its deliveries wait until it is enabled again.", "success")
    return redirect(url_for("admin.webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
@admin_required
def webhook_redeliver(delivery_id: int):
    """Post a finished delivery again: same event id and body, a new row in the log."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with session_scope(_services().engine) as session:
        original = session.get(WebhookDelivery, delivery_id) or abort(404)
        endpoint_id = original.endpoint_id
        copy = endpoints.redeliver(session, original)
        if copy is not None:
            _audit(session, "webhook.redeliver", session.get(WebhookEndpoint, endpoint_id),
                   delivery=delivery_id, event_id=original.event_id)
    flash(f"Delivery {delivery_id} queued again as {copy.id}." if copy else
          f"Delivery {delivery_id} is still on its way: nothing to redeliver.", "success" if copy else "error")
    return redirect(url_for("admin.webhook", endpoint_id=endpoint_id))
