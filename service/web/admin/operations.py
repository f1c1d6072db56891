"""Inbox, outbox and queues as the admin sees them: listing, raw source, reprocessing, the rendered email, RQ health."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rq.job import Job
from sqlmodel import Session, func, select

from service.audit import record
from service.context import QUEUES, Services
from service.db import session_scope
from service.models import INBOUND_STATUSES, InboundMessage, OutboundEmail, Outcome
from service.outbox.actions import outbound_query
from service.outbox.compose import thread_subject
from service.outbox.template_context import template_context
from service.outbox.templates import (
    Rendered,
    RenderError,
    TemplateSource,
    default_source,
    render_isolated,
    versions,
)

logger = logging.getLogger(__name__)

LIST_LIMIT = 300
RAW_LIMIT = 256 * 1024  # bytes of raw source shown; the rest is cut (a 40 MB attachment is not for reading)
PROCESS_JOB = "jobs.intake.process_message"
FAILURES_SHOWN = 5


# ---------------------------------------------------------------------------------------------------- inbox


def inbox(session: Session, status: str | None) -> tuple[list[InboundMessage], dict[str, int]]:
    """The newest messages (of one status, if given) and the count per status."""
    query = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(LIST_LIMIT)
    if status in INBOUND_STATUSES:
        query = query.where(InboundMessage.status == status)
    counts = dict(session.exec(select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all())
    return list(session.exec(query.options(_without_raw())).all()), counts


def _without_raw():
    from sqlalchemy.orm import defer

    return defer(InboundMessage.raw)


def raw_text(row: InboundMessage) -> tuple[str, bool]:
    """The raw bytes as text (undecodable bytes replaced), cut at RAW_LIMIT; the page escapes it."""
    raw = row.raw or b""
    return raw[:RAW_LIMIT].decode("utf-8", errors="replace"), len(raw) > RAW_LIMIT


def reprocess(services: Services, inbound_id: int, actor) -> str:
    """Back to `new` and onto the intake queue; read here and now when Redis is away."""
    with session_scope(services.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            return f"no message {inbound_id}"
        previous = row.status
        row.status, row.reason, row.error, row.attempts = "new", None, None, 0
        record(session, "inbox.reprocess", admin_id=actor.admin_id, actor=actor.email, target=f"inbound {row.id}",
               detail={"message_id": row.message_id, "was": previous})
    try:
        # One job per message and request: a second click while it waits is the same job, not a second read.
        services.queue("intake").enqueue(PROCESS_JOB, inbound_id, job_timeout=300, job_id=f"reprocess-{inbound_id}")
    except Exception as error:  # Redis down: the admin asked for it now, so read it in this request
        logger.warning("inbound %s: Redis unavailable (%s), reprocessing inline", inbound_id, error)
        return _process_inline(services, inbound_id)
    return f"message {inbound_id} queued for reading again"


def _process_inline(services: Services, inbound_id: int) -> str:
    """The pipeline the job calls, called here with this app's services: one path whichever way it is read."""
    from service.pipeline.process import process_message

    status = process_message(services, inbound_id)
    return f"message {inbound_id} read again here (Redis is unavailable): {status}"


# ---------------------------------------------------------------------------------------------------- outbox


def outbox(session: Session, status: str | None, kind: str | None) -> tuple[list[OutboundEmail], dict[str, int]]:
    """The outbox rows (due last first) of one status and kind, and the count per status."""
    query = outbound_query(status=status, kind=kind)
    counts = dict(session.exec(select(OutboundEmail.status, func.count()).group_by(OutboundEmail.status)).all())
    return list(session.exec(query.order_by(OutboundEmail.due_at.desc(), OutboundEmail.id.desc())
                             .limit(LIST_LIMIT))), counts


@dataclass
class RenderedEmail:
    rendered: Rendered | None
    error: str | None


def rendered_email(session: Session, services: Services, row: OutboundEmail) -> RenderedEmail:
    """The email as the sender would render it now (newest version that renders, else the default)."""
    try:
        context = template_context(session, row, services.settings)
    except Exception as error:  # a row whose rep or outcome is gone: show why instead of failing the page
        return RenderedEmail(None, f"cannot build the context: {type(error).__name__}: {error}")
    sources = [(v.version, TemplateSource(v.subject, v.text, v.html))
               for v in versions(session, row.kind, row.variant, row.language)]
    sources.append((None, default_source(row.kind, row.variant, row.language)))
    return _first_that_renders(session, row, sources, context)


def _first_that_renders(session: Session, row: OutboundEmail, sources: list, context: dict) -> RenderedEmail:
    error = "no template"
    for number, source in sources:
        if source is None:
            continue
        try:
            subject, text, html = render_isolated(source, context)
        except RenderError as failed:
            error = str(failed)
            continue
        return RenderedEmail(Rendered(_subject(session, row, subject), text, html, number), None)
    return RenderedEmail(None, error)


def _subject(session: Session, row: OutboundEmail, subject: str) -> str:
    """The subject as sent: a thank-you in the recap's thread takes 'Re: <meeting subject>'."""
    return thread_subject(row, session.get(Outcome, row.outcome_id) if row.outcome_id else None) or subject


def relay_failures(session: Session) -> int:
    """Emails failed at the relay (not because of the customer's address): what an admin can retry."""
    return session.exec(select(func.count()).where(OutboundEmail.status == "failed",
                                                   OutboundEmail.failure == "relay")).one()


def retry_relay_failures(services: Services, actor) -> str:
    """The CLI's retry-failed, audited."""
    from service.outbox.actions import retry_failed

    message = retry_failed(services)
    with session_scope(services.engine) as session:
        record(session, "outbox.retry_failed", admin_id=actor.admin_id, actor=actor.email, target="outbox",
               detail={"result": message})
    return message


def clear_undeliverable(services: Services, customer_id: int, actor) -> str:
    """Take a customer's undeliverable mark off (the outbox's function), audited."""
    from service.outbox.actions import clear_undeliverable as clear

    message = clear(services, customer_id)
    with session_scope(services.engine) as session:
        record(session, "customer.deliverable", admin_id=actor.admin_id, actor=actor.email,
               target=f"customer {customer_id}", detail={"result": message})
    return message


def act_on_outbound(services: Services, outbound_id: int, action: str, actor) -> str:
    """Cancel or send now (the CLI's functions), audited."""
    from service.outbox.actions import cancel

    if action == "cancel":
        message = cancel(services.engine, outbound_id, reason=f"canceled by {actor.email}")
    else:
        message = _send_now(services, outbound_id)
    with session_scope(services.engine) as session:
        record(session, f"outbox.{action}", admin_id=actor.admin_id, actor=actor.email,
               target=f"outbound {outbound_id}", detail={"result": message})
    return message


def _send_now(services: Services, outbound_id: int) -> str:
    from service.outbox.actions import send_now

    try:
        return send_now(services, outbound_id)
    except Exception as error:  # the due time is already now in the database: the reconciler sends it
        logger.warning("outbound %s: not queued (%s); the reconciler will", outbound_id, error)
        return f"email {outbound_id} is due now; Redis is unavailable, so the worker sends it when it is back"


# ---------------------------------------------------------------------------------------------------- queues


@dataclass
class QueueHealth:
    name: str
    queued: int
    scheduled: int
    started: int
    failed: int
    deferred: int
    finished: int
    failures: list[dict] = field(default_factory=list)


def queue_health(services: Services) -> list[QueueHealth]:
    """Counts per RQ queue and its last failures; raises when Redis does not answer."""
    return [_health(services.queue(name)) for name in QUEUES]


def _health(queue) -> QueueHealth:
    failed = queue.failed_job_registry
    return QueueHealth(queue.name, queue.count, queue.scheduled_job_registry.count,
                       queue.started_job_registry.count, failed.count, queue.deferred_job_registry.count,
                       queue.finished_job_registry.count, _failures(queue, failed))


def _failures(queue, failed) -> list[dict]:
    ids = failed.get_job_ids(-FAILURES_SHOWN, -1, desc=False)[::-1]
    jobs = Job.fetch_many(ids, connection=queue.connection)
    return [_failure(job) for job in jobs if job is not None]


def _failure(job: Job) -> dict:
    result = job.latest_result()
    text = (result.exc_string if result and result.exc_string else job.exc_info) or ""
    return {"id": job.id, "function": job.func_name, "args": ", ".join(map(repr, job.args))[:200],
            "ended_at": job.ended_at, "error": text.strip().splitlines()[-1][:500] if text.strip() else "",
            "trace": text[-4000:]}


# ---------------------------------------------------------------------------------------------------- home


def home_counts(session: Session) -> dict[str, int]:
    """What needs an eye at a glance: pending and failed emails, quarantined mail, broken templates."""
    from service.web.admin.catalog import overview

    def count(query) -> int:
        """One COUNT query's number."""
        return session.exec(query).one()

    return {
        "scheduled": count(select(func.count()).where(OutboundEmail.status == "scheduled")),
        "held": count(select(func.count()).where(OutboundEmail.status == "held")),
        "failed": count(select(func.count()).where(OutboundEmail.status == "failed")),
        "relay_failed": relay_failures(session),
        "quarantined": count(select(func.count()).where(InboundMessage.status == "quarantined")),
        "new": count(select(func.count()).where(InboundMessage.status == "new")),
        "broken_templates": sum(1 for _key, current, _count in overview(session) if current.last_error),
    }
