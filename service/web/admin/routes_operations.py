"""Operations: inbox (raw source, reprocess), outbox (rendered email, cancel, send now), audit log, queues."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from service.audit import PAGE_SIZE, actions, entries
from service.db import session_scope
from service.models import INBOUND_STATUSES, OUTBOUND_KINDS, OUTBOUND_STATUSES, InboundMessage, OutboundEmail
from service.web.admin import operations
from service.web.admin.auth import admin_required, current_admin
from service.web.admin.blueprint import bp
from service.web.admin.forms import ActionForm


def _services():
    return current_app.config["KEEPWARM"]


def _choice(name: str, allowed) -> str | None:
    value = request.args.get(name) or None
    return value if value in allowed else None


@bp.get("/inbox")
@admin_required
def inbox():
    """Inbound messages, newest first, by status."""
    status = _choice("status", INBOUND_STATUSES)
    with session_scope(_services().engine) as session:
        rows, counts = operations.inbox(session, status)
    return render_template("admin/inbox.html", rows=rows, counts=counts, status=status, statuses=INBOUND_STATUSES,
                           limit=operations.LIST_LIMIT)


@bp.get("/inbox/<int:inbound_id>")
@admin_required
def inbox_message(inbound_id: int):
    """One message: what was read and its raw source."""
    with session_scope(_services().engine) as session:
        row = session.get(InboundMessage, inbound_id) or abort(404)
        raw, cut = operations.raw_text(row)
    return render_template("admin/inbox_message.html", row=row, raw=raw, cut=cut, limit=operations.RAW_LIMIT,
                           action=ActionForm())


@bp.post("/inbox/<int:inbound_id>/reprocess")
@admin_required
def inbox_reprocess(inbound_id: int):
    """Read a message again."""
    flash(operations.reprocess(_services(), inbound_id, current_admin()), "success")
    return redirect(url_for("admin.inbox_message", inbound_id=inbound_id))


@bp.get("/outbox")
@admin_required
def outbox():
    """Planned and sent emails, filtered by status and kind."""
    status, kind = _choice("status", OUTBOUND_STATUSES), _choice("kind", OUTBOUND_KINDS)
    with session_scope(_services().engine) as session:
        rows, counts = operations.outbox(session, status, kind)
        relay_failed = operations.relay_failures(session)
    return render_template("admin/outbox.html", rows=rows, counts=counts, status=status, kind=kind,
                           statuses=OUTBOUND_STATUSES, kinds=OUTBOUND_KINDS, action=ActionForm(),
                           limit=operations.LIST_LIMIT, relay_failed=relay_failed)


@bp.post("/outbox/retry-failed")
@admin_required
def outbox_retry_failed():
    """Send again, now, every email the relay failed (once the relay is fixed)."""
    flash(operations.retry_relay_failures(_services(), current_admin()), "success")
    return redirect(url_for("admin.outbox", status="failed"))


@bp.get("/outbox/<int:outbound_id>")
@admin_required
def outbox_email(outbound_id: int):
    """One email, rendered as the sender would render it now."""
    with session_scope(_services().engine) as session:
        row = session.get(OutboundEmail, outbound_id) or abort(404)
        shown = operations.rendered_email(session, _services(), row)
    return render_template("admin/outbox_email.html", row=row, shown=shown, action=ActionForm())


@bp.post("/outbox/<int:outbound_id>/<any(cancel,send_now):change>")
@admin_required
def outbox_act(outbound_id: int, change: str):
    """Cancel an email, or send it now."""
    flash(operations.act_on_outbound(_services(), outbound_id, change, current_admin()), "success")
    if request.form.get("back") == "list":
        return redirect(url_for("admin.outbox", **{k: v for k, v in request.args.items() if k in ("status", "kind")}))
    return redirect(url_for("admin.outbox_email", outbound_id=outbound_id))


@bp.get("/audit")
@admin_required
def audit():
    """The audit log, newest first, one page at a time."""
    action = request.args.get("action", "")[:100] or None
    page = max(request.args.get("page", type=int, default=1), 1)
    with session_scope(_services().engine) as session:
        rows, total = entries(session, action=action, page=page)
        names = actions(session)
    return render_template("admin/audit.html", rows=rows, total=total, page=page, action=action, names=names,
                           page_size=PAGE_SIZE)


@bp.get("/queues")
@admin_required
def queues():
    """RQ queue lengths, registries and last failures."""
    try:
        health, error = operations.queue_health(_services()), None
    except Exception as failure:  # Redis down or unset: say so on the page instead of a 500
        health, error = [], f"{type(failure).__name__}: {failure}"
    return render_template("admin/queues.html", health=health, error=error)
