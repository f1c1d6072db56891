"""The send state machine: scheduled → sending (one conditional UPDATE) → sent | failed | canceled.

Only the worker that wins the UPDATE sends. A crash after the SMTP server accepted the email leaves the row in
`sending`; the reconciler sends it again later with the same Message-ID, which receivers dedupe.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from service.context import Services
from service.db import session_scope
from service.debriefs import reminder_moot
from service.models import Customer, OutboundEmail, Outcome, Rep, Suppression
from service.outbox.compose import Envelope, address, compose, reply_subject
from service.outbox.letters import template_context, unsubscribe_url
from service.outbox.templates import RenderError, render_email
from service.outbox.transport import PermanentSendError, SmtpTransport, TransientSendError
from service.tokens import Signer

logger = logging.getLogger(__name__)

# RQ may start a scheduled job up to a second early (it rounds to whole seconds): wait that out, never send early.
EARLY_WAIT_LIMIT = timedelta(seconds=15)
_transports: dict[str, SmtpTransport] = {}


def transport_for(services: Services) -> SmtpTransport:
    """One SMTP connection per worker process, reused across sends."""
    key = services.settings.smtp_url or ""
    if key not in _transports:
        _transports[key] = SmtpTransport(services.settings.smtp())
    return _transports[key]


def send_outbound(services: Services, outbound_id: int, *, retries_left: int | None = None) -> str:
    """Send one row if it is due and still scheduled; returns what happened."""
    due_at = _due_at(services, outbound_id)
    if due_at is None:
        return "missing"
    wait = (due_at - datetime.now(UTC)).total_seconds()
    if wait > EARLY_WAIT_LIMIT.total_seconds():
        return "not due"  # postponed after it was queued: the job for the new time is already scheduled
    if wait > 0:
        time.sleep(wait)
    if not _claim(services, outbound_id):
        return "not scheduled"
    return _deliver(services, outbound_id, retries_left)


def _due_at(services: Services, outbound_id: int) -> datetime | None:
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        return row.due_at if row else None


def _claim(services: Services, outbound_id: int) -> bool:
    """scheduled → sending in one conditional UPDATE: exactly one worker wins."""
    with session_scope(services.engine) as session:
        result = session.execute(sa.update(OutboundEmail).where(
            OutboundEmail.id == outbound_id, OutboundEmail.status == "scheduled")
            .values(status="sending", attempts=OutboundEmail.attempts + 1, updated_at=datetime.now(UTC)))
        return result.rowcount == 1


def _deliver(services: Services, outbound_id: int, retries_left: int | None) -> str:
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        blocked = blocked_reason(session, row) or reminder_moot(session, row)
        if blocked:
            return _finish(session, row, "canceled", canceled_reason=blocked)
        try:
            message = _compose(session, row, services)
        except (RenderError, ValueError) as error:  # even the shipped default failed, or an address is junk
            logger.error("outbound %s cannot be composed: %s", outbound_id, error)
            return _finish(session, row, "failed", last_error=f"cannot compose: {error}"[:1000])
    try:
        transport_for(services).send(message, row.to_address)
    except TransientSendError as error:
        return _transient(services, outbound_id, error, retries_left)
    except PermanentSendError as error:
        return _permanent(services, outbound_id, error)
    with session_scope(services.engine) as session:
        return _finish(session, session.get(OutboundEmail, outbound_id), "sent", sent_at=datetime.now(UTC))


def blocked_reason(session: Session, row: OutboundEmail) -> str | None:
    """Opt-outs are absolute: a suppressed or undeliverable customer address gets nothing, ever."""
    if row.customer_id is None:
        return None
    if session.exec(select(Suppression.id).where(Suppression.email == row.to_address.lower())).first():
        return "suppressed"
    customer = session.get(Customer, row.customer_id)
    return "undeliverable" if customer and customer.undeliverable else None


def _compose(session: Session, row: OutboundEmail, services: Services):
    context = template_context(session, row, services.settings)
    rendered = render_email(session, row.kind, row.variant, row.language, context)
    return compose(_envelope(session, row, services), _threaded(session, row, rendered))


def _threaded(session: Session, row: OutboundEmail, rendered):
    """The thank-you answers the recap in its thread: 'Re: <the meeting's subject>'."""
    outcome = session.get(Outcome, row.outcome_id) if row.outcome_id else None
    if row.kind == "thank_you" and outcome and outcome.thread_message_id and outcome.meeting_subject:
        return type(rendered)(reply_subject(outcome.meeting_subject), rendered.text, rendered.html, rendered.version)
    return rendered


def _envelope(session: Session, row: OutboundEmail, services: Services) -> Envelope:
    settings = services.settings
    rep = session.get(Rep, row.rep_id)
    outcome = session.get(Outcome, row.outcome_id) if row.outcome_id else None
    to_customer = row.customer_id is not None
    sender = address(rep.name if to_customer else "Keepwarm",
                     rep.email if (settings.send_as_rep and to_customer) else settings.intake_address)
    thread = outcome if (row.kind == "thank_you" and outcome and outcome.thread_message_id) else None
    return Envelope(
        sender=sender, to=address(row.to_name, row.to_address),
        reply_to=address(rep.name, rep.email) if to_customer and not settings.send_as_rep else None,
        message_id=row.message_id, date=datetime.now(UTC),
        in_reply_to=thread.thread_message_id if thread else None,
        references=tuple(thread.thread_references) if thread else (),
        unsubscribe_url=unsubscribe_url(Signer(settings), row.to_address) if to_customer else None,
        unsubscribe_mailto=_unsubscribe_mailto(settings) if to_customer else None)


def _unsubscribe_mailto(settings) -> str:
    local, _, domain = settings.intake_address.partition("@")
    return f"mailto:{local}+unsubscribe@{domain}?subject=unsubscribe"


def _transient(services: Services, outbound_id: int, error: Exception, retries_left: int | None) -> str:
    """4xx: back to scheduled and let RQ's Retry try again; after the last retry it is a failure."""
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        if retries_left == 0:
            return _finish(session, row, "failed", last_error=f"gave up after {row.attempts} tries: {error}")
        row.status, row.last_error, row.updated_at = "scheduled", str(error)[:1000], datetime.now(UTC)
    logger.warning("outbound %s: temporary failure, will retry: %s", outbound_id, error)
    raise error


def _permanent(services: Services, outbound_id: int, error: PermanentSendError) -> str:
    """5xx: failed for good; the address is marked undeliverable and the rep is told."""
    with session_scope(services.engine) as session:
        row = session.get(OutboundEmail, outbound_id)
        _finish(session, row, "failed", last_error=str(error)[:1000])
        if row.customer_id is not None:
            _mark_undeliverable(session, row, str(error))
            notice = _notice_rep(session, row, str(error), services)
    if row.customer_id is not None:
        enqueue_notice(services, notice)
    return "failed"


def _mark_undeliverable(session: Session, row: OutboundEmail, error: str) -> None:
    customer = session.get(Customer, row.customer_id)
    customer.undeliverable, customer.undeliverable_reason = True, error[:500]
    for pending in session.exec(select(OutboundEmail).where(OutboundEmail.customer_id == row.customer_id,
                                                            OutboundEmail.status == "scheduled")):
        pending.status, pending.canceled_reason = "canceled", "undeliverable"


def _notice_rep(session: Session, row: OutboundEmail, error: str, services: Services) -> int:
    from service.outcomes import new_outbound

    rep = session.get(Rep, row.rep_id)
    notice = new_outbound(services.settings, kind="rep_notice", rep=rep, to_address=rep.email, to_name=rep.name,
                          due_at=datetime.now(UTC), outcome_id=row.outcome_id, language=row.language)
    notice.notice = {"address": row.to_address, "error": error[:500]}
    session.add(notice)
    session.flush()
    return notice.id


def enqueue_notice(services: Services, notice_id: int) -> None:
    from service.outbox.schedule import enqueue_send

    try:
        enqueue_send(services, notice_id, datetime.now(UTC))
    except Exception:  # Redis down: the reconciler enqueues it from the database
        logger.exception("outbound %s: not enqueued now; the reconciler will", notice_id)


def _finish(session: Session, row: OutboundEmail, status: str, **values) -> str:
    row.status, row.updated_at = status, datetime.now(UTC)
    for name, value in values.items():
        setattr(row, name, value)
    logger.info("outbound %s %s to %s: %s", row.id, row.kind, row.to_address, status)
    return status
