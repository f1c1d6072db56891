"""The one owner of an outgoing email's status: every change is a conditional UPDATE written here.

    held ──release──▶ scheduled ──claim──▶ sending ──▶ sent
      │                │   ▲                 │  ├──▶ scheduled   (retry after a 4xx; released unsent; deferred by
      │                │   │                 │  │                 the relay's limit; revived)
      │                │   └─ postpone,      │  ├──▶ failed      (5xx, tries used up, abandoned too often)
      │                │      send now, move │  └──▶ canceled    (moot or opted out at the moment of sending)
      └──────┬─────────┘
             ▼
          canceled  (by the rep, an admin, a newer outcome, a debrief, an opt-out, an undeliverable address)

    failed (relay) ──retry_failed──▶ scheduled;   canceled (undeliverable) ──revive──▶ held | scheduled

Each function names the statuses it moves from in its WHERE clause, so a change that lands while another
process moved the row (a sender's claim, a lease revival) changes nothing instead of overwriting it: a rep's
cancel never turns `sending` into `canceled` while the email goes out. The callers (web pages, the CLI, the
debrief, the pipeline, the sender) open the transaction; these functions never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from service import events
from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome, Suppression

logger = logging.getLogger(__name__)

Due = tuple[int, datetime]  # (outbound id, due_at): what the queue needs to carry a row

_ID, _STATUS = OutboundEmail.id, OutboundEmail.status


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# ---------------------------------------------------------------------------------------------------- by a sender


def claim(session: Session, *, holder: str, until: datetime, limit: int, now: datetime | None = None) -> list[int]:
    """scheduled → sending for up to `limit` rows due by `until`, the rep's emails first; returns the ids won.

    On PostgreSQL the candidates are picked with SKIP LOCKED, so workers draining at once take different rows.
    They are picked in a materialized WITH query: PostgreSQL may run an `IN (SELECT … LIMIT … FOR UPDATE SKIP
    LOCKED)` again for each row it updates, each run skipping the rows just locked, so the LIMIT stopped
    bounding the claim and one worker took every due row (PostgreSQL bug report #15715: expected behaviour).
    """
    # The rep's own emails first (a summary must not wait behind a backlog the relay's limit holds back), then
    # in due order.
    due = (select(_ID).where(_STATUS == "scheduled", OutboundEmail.due_at <= until)
           .order_by(OutboundEmail.customer_id.is_not(None), OutboundEmail.due_at, _ID).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    picked = due.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    return [r[0] for r in session.execute(
        sa.update(OutboundEmail).where(_ID.in_(select(picked.c.id)), _STATUS == "scheduled")
        .values(status="sending", attempts=OutboundEmail.attempts + 1, updated_at=_now(now), held_by=holder)
        .returning(_ID))]


def renew(session: Session, ids: list[int], *, now: datetime | None = None) -> None:
    """The lease of rows still being sent (their updated_at), so nobody takes them for abandoned."""
    session.execute(sa.update(OutboundEmail).where(_ID.in_(ids), _STATUS == "sending").values(updated_at=_now(now)))


_SENT = (OutboundEmail.__table__.update()
         .where(OutboundEmail.__table__.c.id == sa.bindparam("b_id"), OutboundEmail.__table__.c.status == "sending")
         .values(status="sent", sent_at=sa.bindparam("b_at"), updated_at=sa.bindparam("b_at")))


def sent(session: Session, sends: list[tuple[int, datetime]]) -> None:
    """sending → sent, with the moment the relay took each (one executemany for a batch)."""
    if sends:
        session.connection().execute(_SENT, [{"b_id": i, "b_at": at} for i, at in sends])
        # Once per email (its id is the key): a row another worker recorded sent first adds no second event.
        events.emit_emails(session, "email.sent", [i for i, _at in sends], where=(_STATUS == "sent",))


def release(session: Session, ids: list[int], *, now: datetime | None = None) -> None:
    """sending → scheduled for rows claimed but never tried: the claim is not counted as an attempt."""
    if ids:
        session.execute(sa.update(OutboundEmail).where(_ID.in_(ids), _STATUS == "sending")
                        .values(status="scheduled", attempts=OutboundEmail.attempts - 1, updated_at=_now(now)))


def defer(session: Session, outbound_id: int, due_at: datetime, why: str, *, now: datetime | None = None) -> bool:
    """sending → scheduled at `due_at`, never tried (the relay's limit or pause): not counted as an attempt, and the
    row keeps its place among the others."""
    done = session.execute(sa.update(OutboundEmail).where(_ID == outbound_id, _STATUS == "sending")
                           .values(status="scheduled", due_at=due_at, attempts=OutboundEmail.attempts - 1,
                                   last_error=why[:1000], updated_at=_now(now))).rowcount == 1
    return done


def retry_at(session: Session, outbound_id: int, due_at: datetime, error: str, *, now: datetime | None = None) -> bool:
    """sending → scheduled again at `due_at` (a 4xx, a dropped connection); whether the row was still ours."""
    return _from_sending(session, outbound_id, status="scheduled", due_at=due_at, last_error=error[:1000],
                         updated_at=_now(now))


def fail(session: Session, outbound_id: int, error: str, *, failure: str, now: datetime | None = None) -> bool:
    """sending → failed; `failure` says whose fault: "address" (the customer's) or "relay" (ours to fix)."""
    return _from_sending(session, outbound_id, status="failed", last_error=error[:1000], failure=failure,
                         updated_at=_now(now))


def cancel_claimed(session: Session, outbound_id: int, reason: str, *, now: datetime | None = None) -> bool:
    """sending → canceled: found moot or opted out at the moment of sending, so never tried."""
    return _from_sending(session, outbound_id, status="canceled", canceled_reason=reason, updated_at=_now(now))


def _from_sending(session: Session, outbound_id: int, **values) -> bool:
    done = session.execute(sa.update(OutboundEmail).where(_ID == outbound_id, _STATUS == "sending")
                           .values(**values)).rowcount == 1
    if done:
        logger.info("outbound %s: %s", outbound_id, values["status"])
        if values["status"] in ("failed", "canceled"):
            events.emit_emails(session, f"email.{values['status']}", [outbound_id],
                               occurrence=f"@{values['updated_at'].isoformat()}")
    return done


def revive_abandoned(session: Session, whose, why: str, *, max_abandoned: int,
                     now: datetime | None = None) -> list[Due]:
    """Rows stuck in `sending` whose worker is gone (`whose`: a stale lease, or a holder's name) → scheduled, to
    be sent again; one abandoned `max_abandoned` times is a crash that repeats, not bad luck: → failed.

    Each row is revived by one UPDATE … RETURNING, so two workers doing this at once never both queue it."""
    now = _now(now)
    stale = (_STATUS == "sending", whose)
    failed = session.execute(sa.update(OutboundEmail).where(*stale, OutboundEmail.attempts >= max_abandoned)
                             .values(status="failed", updated_at=now, last_error="abandoned mid-send too many times")
                             .returning(_ID)).scalars().all()
    events.emit_emails(session, "email.failed", failed, occurrence=f"@{now.isoformat()}")
    revived = session.execute(sa.update(OutboundEmail).where(*stale)
                              .values(status="scheduled", updated_at=now, last_error=f"revived: {why}"[:1000])
                              .returning(_ID, OutboundEmail.due_at))
    return [(r[0], r[1]) for r in revived]


# ---------------------------------------------------------------------------------------------------- by people


def cancel(session: Session, *where, reason: str, now: datetime | None = None) -> list[int]:
    """held/scheduled → canceled for the rows matching `where`; a row already claimed is left to its sender.
    Returns the ids canceled."""
    now = _now(now)
    ids = [r[0] for r in session.execute(
        sa.update(OutboundEmail).where(_STATUS.in_(PENDING_STATUSES), *where)
        .values(status="canceled", canceled_reason=reason, updated_at=now).returning(_ID))]
    if ids:
        logger.info("%s pending emails canceled (%s): %s", len(ids), reason, ", ".join(map(str, ids[:20])))
        events.emit_emails(session, "email.canceled", ids, occurrence=f"@{now.isoformat()}")
    return ids


def postpone(session: Session, outbound_id: int, *, days: int, now: datetime | None = None) -> datetime | None:
    """A scheduled email moved `days` later (from now when it is overdue); the new due time, or None when the row
    is no longer scheduled. Conditional on the status and the due time read, so a sender's claim always wins."""
    now = _now(now)
    due_at = session.exec(select(OutboundEmail.due_at).where(_ID == outbound_id, _STATUS == "scheduled")).first()
    if due_at is None:
        return None
    due = max(due_at, now) + timedelta(days=days)
    if not _reschedule(session, outbound_id, due_at, {"due_at": due, "updated_at": now}):
        return None
    events.emit_scheduled(session, [(outbound_id, due)])
    return due


def send_now(session: Session, outbound_id: int, *, now: datetime | None = None) -> bool:
    """A scheduled email due now; whether it still was scheduled."""
    now = _now(now)
    return session.execute(sa.update(OutboundEmail).where(_ID == outbound_id, _STATUS == "scheduled")
                           .values(due_at=now, updated_at=now)).rowcount == 1


def move(session: Session, row: OutboundEmail, *, now: datetime | None = None, **values) -> bool:
    """A scheduled (or held) row read by the caller takes new values (due_at, variant, personal_line), only if it is
    still pending with the due time read; the caller's object is refreshed either way."""
    done = _reschedule(session, row.id, row.due_at, {**values, "updated_at": _now(now)})
    session.refresh(row)
    return done


def _reschedule(session: Session, outbound_id: int, read_due_at: datetime, values: dict) -> bool:
    """The row takes `values` if it is still pending with the due time the caller read."""
    return session.execute(
        sa.update(OutboundEmail).where(_ID == outbound_id, _STATUS.in_(PENDING_STATUSES),
                                       OutboundEmail.due_at == read_due_at)
        .values(**values).execution_options(synchronize_session=False)).rowcount == 1


def release_held(session: Session, outcome_id: int, *, now: datetime | None = None) -> list[Due]:
    """The rep confirmed (or answered the debrief): the outcome's held emails become scheduled, none earlier than
    now. A row canceled meanwhile stays canceled. Returns what to enqueue."""
    now = _now(now)
    rows = session.execute(
        sa.update(OutboundEmail).where(OutboundEmail.outcome_id == outcome_id, _STATUS == "held")
        .values(status="scheduled", updated_at=now,
                due_at=sa.case((OutboundEmail.due_at < now, now), else_=OutboundEmail.due_at))
        .returning(_ID, OutboundEmail.due_at)).all()
    session.execute(sa.update(Outcome).where(Outcome.id == outcome_id, Outcome.confirmed_at.is_(None))
                    .values(confirmed_at=now))
    events.emit_scheduled(session, rows)
    return [(r[0], r[1]) for r in rows]


def retry_failed(session: Session, *, now: datetime | None = None) -> list[Due]:
    """Emails the relay failed (failure "relay") back to scheduled, due now, with a fresh count of tries."""
    now = _now(now)
    rows = session.execute(sa.update(OutboundEmail).where(_STATUS == "failed", OutboundEmail.failure == "relay")
                           .values(status="scheduled", failure=None, attempts=0, due_at=now, updated_at=now)
                           .returning(_ID, OutboundEmail.due_at)).all()
    events.emit_scheduled(session, rows)
    return [(r[0], r[1]) for r in rows]


# ---------------------------------------------------------------------------------------------------- opt-outs


def opt_out(customer: Customer | None, suppressed: Iterable[str]) -> str | None:
    """Why nothing may be written to this customer ("suppressed", "undeliverable"), else None. Opt-outs are
    absolute: planning, a debrief and the sender all ask this."""
    if customer is None:
        return None
    if customer.email.lower() in suppressed:
        return "suppressed"
    return "undeliverable" if customer.undeliverable else None


def suppressed_among(session: Session, addresses: Iterable[str]) -> set[str]:
    """Which of these addresses are on the suppression list (lower case)."""
    wanted = sorted({a.strip().lower() for a in addresses})
    return set(session.exec(select(Suppression.email).where(Suppression.email.in_(wanted)))) if wanted else set()


def is_suppressed(session: Session, email: str) -> bool:
    return bool(suppressed_among(session, [email]))


def suppress(session: Session, email: str, reason: str, *, now: datetime | None = None) -> int:
    """Add the address to the suppression list (once) and cancel everything pending for it; how many canceled."""
    email = email.strip().lower()
    if not is_suppressed(session, email):
        session.add(Suppression(email=email, reason=reason))
        session.flush()
        events.emit_unsubscribed(session, email, reason, now=now)
    canceled = cancel(session, sa.func.lower(OutboundEmail.to_address) == email, reason="suppressed", now=now)
    logger.info("suppressed %s (%s): %s pending emails canceled", email, reason, len(canceled))
    return len(canceled)


def mark_undeliverable(session: Session, addresses: Iterable[str], reason: str, *,
                       now: datetime | None = None) -> int:
    """These customers' addresses refuse mail: marked, and everything pending for them canceled; how many."""
    wanted = sorted({a.strip().lower() for a in addresses})
    if not wanted:
        return 0
    ids = list(session.exec(select(Customer.id).where(Customer.email.in_(wanted))))
    if not ids:
        return 0
    session.execute(sa.update(Customer).where(Customer.id.in_(ids))
                    .values(undeliverable=True, undeliverable_reason=reason[:500]))
    logger.info("customers %s marked undeliverable: %s", ", ".join(wanted), reason[:200])
    return len(cancel(session, OutboundEmail.customer_id.in_(ids), reason="undeliverable", now=now))


def clear_undeliverable(session: Session, customer_id: int, *, now: datetime | None = None) -> list[Due] | None:
    """Take the customer's undeliverable mark off and give back their emails it canceled that are still to come
    (held again when their outcome still waits for the rep's confirmation); past ones stay canceled. None when the
    customer was not marked; else the rows scheduled again, to enqueue."""
    now = _now(now)
    cleared = session.execute(sa.update(Customer).where(Customer.id == customer_id, Customer.undeliverable)
                              .values(undeliverable=False, undeliverable_reason=None)).rowcount
    if not cleared:
        return None
    current = select(Outcome.id).where(Outcome.superseded_by.is_(None))
    waiting = current.where(Outcome.held_reason.is_not(None), Outcome.confirmed_at.is_(None))
    canceled = (OutboundEmail.customer_id == customer_id, _STATUS == "canceled",
                OutboundEmail.canceled_reason == "undeliverable", OutboundEmail.due_at > now)
    session.execute(sa.update(OutboundEmail).where(*canceled, OutboundEmail.outcome_id.in_(waiting))
                    .values(status="held", canceled_reason=None, updated_at=now))
    mine = sa.or_(OutboundEmail.outcome_id.is_(None), OutboundEmail.outcome_id.in_(current))
    rows = session.execute(sa.update(OutboundEmail).where(*canceled, mine)
                           .values(status="scheduled", canceled_reason=None, updated_at=now)
                           .returning(_ID, OutboundEmail.due_at)).all()
    events.emit_scheduled(session, rows)
    return [(r[0], r[1]) for r in rows]
