"""A rep's answer by email applied to the outcome the answered email was about: confirm, stop, move the
recontact, correct the outcome or the cause, add decision makers or a lesson; and a short reply to the rep (the
`rep_answer` email) that says what changed, threaded to theirs.

The answered email must be one of ours to this rep (a summary, a debrief reminder, a delivery notice, an earlier
reply): an answer naming another rep's email changes nothing. A correction or an addition is saved as the debrief
form would save it (`debrief.save_debrief`, with the saved or prefilled answers and the change): the plan follows
it the same way, and, as the form does, what was held is released (the reply says so). Every status change goes
through outbox.status. An answer read twice changes things once: intake reads the same Message-ID once, and an
answer already replied to is not applied again (an admin's "read again").
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from service.models import PENDING_STATUSES, Customer, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox import status
from service.outbox.compose import reply_subject
from service.outbox.rows import new_outbound
from service.outbox.status import Due
from service.outbox.template_context import date_text
from service.pipeline.debrief import (
    DATED_PLANS,
    THEIR_SIDE,
    debrief_for,
    prefill,
    save_debrief,
)
from service.planning import calendar
from service.planning.policy import Policy, current_policy
from service.settings import Settings

logger = logging.getLogger(__name__)

STOPPED = "stopped by the rep's reply"
# The debrief's boxes the answer's reasons tick, on each side ("needs" and "other" have no reason word).
_OURS = {"unconvinced": "unconvinced", "relationship": "relationship"}
_THEIRS = {r: r for r in THEIR_SIDE if r != "other"}
_SLACK = timedelta(days=1)  # a day on the customer's clock starts up to a day either side of UTC midnight


def apply_answer(session: Session, settings: Settings, inbound_id: int | None, reading, *,
                 now: datetime | None = None) -> list[Due]:
    """The answer's changes and the reply to the rep, in the caller's transaction; the rows to enqueue."""
    now = now or datetime.now(UTC)
    answered = _answered(session, reading)
    if answered is None:
        return []
    if _replied_to(session, reading.message_id):
        logger.info("inbound %s: answer %s was applied already: nothing changed", inbound_id, reading.message_id)
        return []
    outcome = session.get(Outcome, answered.outcome_id)
    rep = session.get(Rep, answered.rep_id)
    answer = reading.answer or {}
    # Too short to tell ("ok", "stop", "+3m"): the rep's own language, else the answered email's.
    language = answer.get("language") or rep.language or answered.language or outcome.language
    due, notice = _apply(session, settings, answer, outcome, language, now)
    logger.info("inbound %s: rep %s answered %s (%s): %s", inbound_id, rep.id, answered.message_id,
                answer.get("intent", "unreadable"), notice["action"])
    if notice["action"] == "nothing":
        return due
    return due + [_reply(session, settings, rep, outcome, reading, notice, language, now)]


def _answered(session: Session, reading) -> OutboundEmail | None:
    """The first of our emails the answer names that went to a rep; None (and a log line) when it is not this
    rep's, or is about no outcome."""
    rows = {r.message_id: r for r in session.exec(select(OutboundEmail).where(
        OutboundEmail.message_id.in_(reading.answers), OutboundEmail.customer_id.is_(None)))}
    row = next((rows[i] for i in reading.answers if i in rows), None)
    if row is None:
        logger.warning("answer %s names none of our emails to a rep: nothing changed", reading.message_id)
        return None
    if row.rep_id != reading.rep_id:
        logger.warning("answer %s from rep %s names outbound %s of rep %s: nothing changed", reading.message_id,
                       reading.rep_id, row.id, row.rep_id)
        return None
    if row.outcome_id is None:
        logger.info("answer %s names outbound %s, about no outcome: nothing changed", reading.message_id, row.id)
        return None
    owner = session.exec(select(Outcome.rep_id).where(Outcome.id == row.outcome_id)).first()
    if owner != reading.rep_id:  # our email went to this rep, but the meeting is another rep's (or gone)
        logger.warning("answer %s from rep %s names outbound %s about outcome %s of rep %s: nothing changed",
                       reading.message_id, reading.rep_id, row.id, row.outcome_id, owner)
        return None
    return row


def _replied_to(session: Session, message_id: str) -> bool:
    """Whether this answer was applied before (its reply exists): a second reading changes nothing."""
    return session.exec(select(OutboundEmail.id).where(
        OutboundEmail.kind == "rep_answer",
        OutboundEmail.notice["in_reply_to"].as_string() == message_id)).first() is not None


def _apply(session: Session, settings: Settings, answer: dict, outcome: Outcome, language: str,
           now: datetime) -> tuple[list[Due], dict]:
    """What the answer changes: the rows to enqueue, and the notice the reply is written from."""
    intent = answer.get("intent", "unreadable")
    notice = {"customer": _customer_label(session, outcome), "count": 0, "date_text": "", "subject": "",
              "outcome": "", "cause": "", "people": [], "lesson": False, "released": 0, "canceled": 0}
    if intent == "stop":
        canceled = status.cancel(session, OutboundEmail.outcome_id == outcome.id,
                                 OutboundEmail.customer_id.is_not(None), reason=STOPPED, now=now)
        return [], {**notice, "action": "stopped" if canceled else "nothing", "count": len(canceled)}
    if intent == "unreadable":
        return [], {**notice, "action": "unreadable"}
    day = date.fromisoformat(answer["recontact_on"]) if answer.get("recontact_on") else None
    changes = _debrief_changes(session, answer, outcome)
    if changes or (day and debrief_for(session, outcome.id) is not None):
        due, done = _through_debrief(session, settings, outcome, changes, day, now)
    elif day:
        due, count = _move_recontacts(session, settings, outcome, day, now)
        done = {"moved": count}
    else:
        due, done = [], {}
    if answer.get("confirm") and not done.get("released"):
        released = status.release_held(session, outcome.id, now=now)
        due, done = due + released, {**done, "released": len(released)}
    notice.update({k: v for k, v in done.items() if k != "moved"})
    if done.get("moved") and day:
        notice["date_text"] = date_text(day, language)
    action = _action(intent, done)
    count = done.get("released", 0) if action == "confirmed" else done.get("moved", 0)
    return due, {**notice, "action": action, "count": count}


def _action(intent: str, done: dict) -> str:
    """The notice's lead: what the answer asked for, if it changed something; `nothing` when nothing changed."""
    if not any(done.values()):
        return "nothing"
    if intent == "confirm" or (set(k for k, v in done.items() if v) == {"released"}):
        return "confirmed"
    if intent == "move" and set(k for k, v in done.items() if v) <= {"moved", "released"}:
        return "moved"
    return "corrected" if done.get("outcome") or done.get("cause") else "added" if (
        done.get("people") or done.get("lesson")) else "moved"


def _debrief_changes(session: Session, answer: dict, outcome: Outcome) -> dict:
    """What the answer says about the meeting that the outcome does not say already, as the debrief's words:
    outcome, cause (ours/theirs), decision makers, lesson. Empty when it adds nothing."""
    current = prefill(session, outcome)
    changes: dict = {}
    said = answer.get("outcome")
    if said in ("won", "lost") and said != current.outcome:
        changes["outcome"] = said
    cause, reasons = answer.get("cause"), answer.get("reasons") or []
    if cause in ("internal", "external") and said != "won" and cause != current.cause:
        ours = tuple(dict.fromkeys(_OURS[r] for r in reasons if r in _OURS))
        theirs = tuple(dict.fromkeys(_THEIRS[r] for r in reasons if r in _THEIRS))
        if cause == "internal":
            changes.update(ours=ours or current.ours or ("other",), theirs=())
        else:
            changes.update(theirs=theirs or current.theirs or ("other",), ours=())
        if current.outcome != "lost" and "outcome" not in changes:
            changes["outcome"] = "lost"  # "it was my fault": a cause of a loss says the sale was lost
    known = {((p.get("name") or "").lower(), (p.get("role") or "").lower()) for p in current.decision_makers}
    people = [p for p in answer.get("decision_makers") or []
              if ((p.get("name") or "").lower(), (p.get("role") or "").lower()) not in known]
    if people:
        changes["decision_makers"] = (*current.decision_makers, *people)
    lesson = (answer.get("lesson") or "").strip()
    if lesson and lesson not in current.lesson:
        changes["lesson"] = f"{current.lesson}\n{lesson}".strip()
    return changes


def _through_debrief(session: Session, settings: Settings, outcome: Outcome, changes: dict, day: date | None,
                     now: datetime) -> tuple[list[Due], dict]:
    """The answer saved as the debrief form would save it: the saved (or prefilled) answers with the change, the
    plan following it. Held emails are released first, so the prefilled plan is the one they carry."""
    before = _pending_customer_rows(session, outcome)
    previous = prefill(session, outcome)
    released = status.release_held(session, outcome.id, now=now)
    answers = replace(prefill(session, outcome), **changes)
    if day and answers.outcome != "won":
        plan = answers.plan if answers.plan in DATED_PLANS else "recontact_on_date"
        answers = replace(answers, plan=plan, recontact_on=day)
    saved = save_debrief(session, settings, outcome, answers, now=now)
    queued = dict(released)
    queued.update(saved.planned)
    done = {"released": len(released), "canceled": len(before - _pending_customer_rows(session, outcome)),
            "outcome": answers.outcome if answers.outcome != previous.outcome else "",
            "cause": (answers.cause or "") if (answers.ours, answers.theirs) != (previous.ours, previous.theirs)
            and answers.outcome != "won" else "",
            "people": [_person(p) for p in answers.decision_makers[len(previous.decision_makers):]]
            if "decision_makers" in changes else [],
            "lesson": "lesson" in changes,
            "moved": len(_recontacts_on(session, outcome, day)) if day and answers.outcome != "won" else 0}
    return list(queued.items()), done


def _pending_customer_rows(session: Session, outcome: Outcome) -> set[int]:
    return set(session.exec(select(OutboundEmail.id).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.customer_id.is_not(None),
        OutboundEmail.status.in_(PENDING_STATUSES))))


def _recontacts_on(session: Session, outcome: Outcome, day: date) -> list[int]:
    """The outcome's pending recontacts due on or after the day (what a move to the day produced)."""
    start = datetime.combine(day, time(0), tzinfo=UTC) - _SLACK
    return list(session.exec(select(OutboundEmail.id).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "recontact",
        OutboundEmail.status.in_(PENDING_STATUSES), OutboundEmail.due_at >= start)))


def _person(person: dict) -> str:
    """ "Maria Rossi (CFO)": a role key of four letters or fewer is an acronym."""
    name, role = person.get("name") or "", person.get("role") or ""
    role = role.upper() if role and len(role) <= 4 else role
    return f"{name} ({role})" if name and role else name or role


def _move_recontacts(session: Session, settings: Settings, outcome: Outcome, day: date,
                     now: datetime) -> tuple[list[Due], int]:
    """The outcome's pending recontacts moved to the day's recontact slot; for a lost outcome with none pending,
    a new one per customer who may be written to. Returns what to enqueue and how many rows changed."""
    policy = current_policy(session)
    rep = session.get(Rep, outcome.rep_id)
    pending = list(session.exec(select(OutboundEmail).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "recontact",
        OutboundEmail.status.in_(PENDING_STATUSES)).order_by(OutboundEmail.id)))
    if pending:
        moved = [row for row in pending
                 if status.move(session, row, now=now, due_at=_slot(session, row.customer_id, rep, day, policy, now))]
    elif outcome.outcome == "lost":
        moved = _new_recontacts(session, settings, outcome, rep, day, policy, now)
    else:
        return [], 0
    if moved:
        session.execute(sa.update(Outcome).where(Outcome.id == outcome.id).values(recontact_on=day))
    return [(row.id, row.due_at) for row in moved if row.status == "scheduled"], len(moved)


def _new_recontacts(session: Session, settings: Settings, outcome: Outcome, rep: Rep, day: date, policy: Policy,
                    now: datetime) -> list[OutboundEmail]:
    created = []
    for customer in _customers(session, outcome):
        if status.opt_out(customer, status.suppressed_among(session, [customer.email])):
            continue
        row = new_outbound(settings, kind="recontact", rep=rep, to_address=customer.email, to_name=customer.name,
                           due_at=_slot(session, customer.id, rep, day, policy, now), outcome_id=outcome.id,
                           language=outcome.language, customer_id=customer.id)
        session.add(row)
        created.append(row)
    session.flush()
    return created


def _slot(session: Session, customer_id: int | None, rep: Rep, day: date, policy: Policy, now: datetime) -> datetime:
    """The policy's recontact time on the first business day from `day`, on the customer's clock (never past)."""
    customer = session.get(Customer, customer_id) if customer_id else None
    zone = calendar.customer_zone(customer.timezone if customer else None, ZoneInfo(rep.timezone))
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    return calendar.next_business_slot(max(start, now), zone, policy.recontact_time, policy)


def _customers(session: Session, outcome: Outcome) -> list[Customer]:
    return list(session.exec(select(Customer).join(OutcomeCustomer, OutcomeCustomer.customer_id == Customer.id)
                             .where(OutcomeCustomer.outcome_id == outcome.id).order_by(Customer.id)))


def _customer_label(session: Session, outcome: Outcome) -> str:
    customers = _customers(session, outcome)
    if not customers:
        return ""
    first = customers[0].name or customers[0].email
    return first if len(customers) == 1 else f"{first} (+{len(customers) - 1})"


def _reply(session: Session, settings: Settings, rep: Rep, outcome: Outcome, reading, notice: dict, language: str,
           now: datetime) -> Due:
    """The short reply to the rep, in the answer's language, threaded to the rep's email (and so to ours)."""
    row = new_outbound(settings, kind="rep_answer", rep=rep, to_address=rep.email, to_name=rep.name, due_at=now,
                       outcome_id=outcome.id, language=language)
    row.notice = {**notice, "subject": reply_subject(reading.subject or "Keepwarm"),
                  "in_reply_to": reading.message_id,
                  "references": [*reading.references[-9:], reading.message_id]}
    session.add(row)
    session.flush()
    return row.id, row.due_at
