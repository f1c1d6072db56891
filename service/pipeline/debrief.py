"""A debrief applied to the plan: the rep's answers reschedule, cancel or create the recontacts of one outcome.

The article behind Keepwarm: a loss holds knowledge. A cause on the customer's side calls for staying in touch
or meeting the other decision makers; a cause on ours calls for learning, and for deciding whether, when and how
to try again. The rep says which here, and the plan follows at once.

Plan semantics (one recontact per current customer of the outcome, at most):
- recontact_on_date: on the rep's date, variant from the reasons (planning.recontact_variant);
- meet_decision_makers: a `consult` recontact, policy.reason_delays["consult"] days out (or on the rep's date);
- new_proposal: a `default` recontact at policy.default_recontact_days (or on the rep's date);
- stay_in_touch: a `default` recontact at policy.default_recontact_days;
- no_recontact (and a won outcome): pending recontacts are canceled.
Delays count from the first submission, so editing the lesson a week later does not slide the date. Due times use
planning's slot rules (recontact_time in the customer's zone, next business day, never the thank-you's day).
Applying the same answers twice changes nothing; a scheduled row is moved in place rather than replaced.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from service import events
from service.models import Customer, Debrief, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox import status
from service.outbox.rows import new_outbound
from service.outbox.template_context import outcome_words, template_context
from service.outbox.templates import render_email
from service.planning import calendar
from service.planning.calendar import next_business_slot
from service.planning.plan import CustomerFacts, OutcomeFacts, plan, recontact_variant
from service.planning.policy import Policy, current_policy
from service.settings import Settings

logger = logging.getLogger(__name__)

OUTCOME_CHOICES = {"lost": "Lost: no sale for now", "won": "Won: sale made", "unknown": "Not decided yet"}
OUR_SIDE = {"unconvinced": "Our pitch was not convincing", "needs": "We misunderstood their needs",
            "relationship": "The relationship was not built yet", "other": "Something else"}
THEIR_SIDE = {"budget": "Budget", "timing": "Timing", "consult": "They must consult others",
              "other": "Something else"}
PLANS = {"recontact_on_date": "Recontact on a date", "meet_decision_makers": "Meet the other decision makers",
         "new_proposal": "Try a new proposal", "stay_in_touch": "Stay in touch, no date",
         "no_recontact": "No recontact"}
DATED_PLANS = ("recontact_on_date", "meet_decision_makers", "new_proposal")
# Used when an admin removed "consult" from the policy's reason delays: the article's "soon, while it is warm".
CONSULT_DAYS = 14
# A thank-you weeks after the meeting reads as automated: a late correction to "lost" adds one only within this.
THANK_YOU_WINDOW = timedelta(days=7)
MAX_PERSONAL_LINE = 300
MAX_LESSON = 2000


@dataclass(frozen=True)
class Answers:
    """What the rep said, in the debrief's own words (stored as Debrief.answers)."""

    outcome: str = "lost"
    ours: tuple[str, ...] = ()
    theirs: tuple[str, ...] = ()
    decision_makers: tuple[dict, ...] = ()
    lesson: str = ""
    plan: str = "no_recontact"
    recontact_on: date | None = None
    personal_line: str = ""

    def __post_init__(self) -> None:
        """Refuse words outside the form's vocabulary rather than plan from them."""
        _check_choice("outcome", self.outcome, OUTCOME_CHOICES)
        _check_choice("plan", self.plan, PLANS)
        for name, allowed in (("ours", OUR_SIDE), ("theirs", THEIR_SIDE)):
            for value in getattr(self, name):
                _check_choice(name, value, allowed)
        if self.plan == "recontact_on_date" and self.recontact_on is None and self.outcome != "won":
            raise ValueError("plan recontact_on_date needs a date")

    @property
    def cause(self) -> str | None:
        """external, internal, both, or None when the rep ticked nothing."""
        sides = ("internal" if self.ours else "") + ("external" if self.theirs else "")
        return {"internal": "internal", "external": "external", "internalexternal": "both"}.get(sides)

    @property
    def reasons(self) -> tuple[str, ...]:
        """The domain's reason words, for the recontact variant ("other" and "needs" have none of their own)."""
        mapped = {"unconvinced": "unconvinced", "relationship": "relationship"}
        return tuple(r for r in self.theirs if r != "other") + tuple(mapped[r] for r in self.ours if r in mapped)

    @property
    def writes(self) -> bool:
        """Whether the plan asks for a recontact at all."""
        return self.outcome != "won" and self.plan != "no_recontact"

    def to_json(self) -> dict:
        """JSON-safe form for Debrief.answers."""
        data = asdict(self)
        data.update(ours=list(self.ours), theirs=list(self.theirs), decision_makers=list(self.decision_makers),
                     recontact_on=self.recontact_on.isoformat() if self.recontact_on else None)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Answers:
        """Answers from stored JSON (unknown keys ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        day = known.get("recontact_on")
        return cls(**{**known, "ours": tuple(known.get("ours", ())), "theirs": tuple(known.get("theirs", ())),
                      "decision_makers": tuple(known.get("decision_makers", ())),
                      "recontact_on": date.fromisoformat(day) if day else None})


@dataclass(frozen=True)
class Recontact:
    """The one recontact a customer should have: when, which email, and the rep's line."""

    due_at: datetime
    variant: str
    personal_line: str | None


@dataclass
class Saved:
    """The result of a submission: the debrief, and the rows to put on the queue once committed."""

    debrief: Debrief
    planned: list[tuple[int, datetime]] = field(default_factory=list)
    changed: int = 0


def _check_choice(name: str, value: str, allowed: dict) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


# ---------------------------------------------------------------------------------------------------- reading


def debrief_for(session: Session, outcome_id: int) -> Debrief | None:
    """The outcome's debrief, if the rep submitted one."""
    return session.exec(select(Debrief).where(Debrief.outcome_id == outcome_id)).first()


def current_customers(session: Session, outcome: Outcome) -> list[Customer]:
    """The outcome's customers that no newer outcome has taken over (their plan follows the newer meeting)."""
    ids = list(session.exec(select(OutcomeCustomer.customer_id).where(OutcomeCustomer.outcome_id == outcome.id)))
    newer = set(session.exec(select(OutcomeCustomer.customer_id).where(
        OutcomeCustomer.customer_id.in_(ids), OutcomeCustomer.outcome_id > outcome.id)))
    customers = session.exec(select(Customer).where(Customer.id.in_([i for i in ids if i not in newer])))
    return sorted(customers, key=lambda c: c.id)


def prefill(session: Session, outcome: Outcome) -> Answers:
    """The saved answers, else what the reading and the current plan say."""
    saved = debrief_for(session, outcome.id)
    if saved is not None:
        return Answers.from_json(saved.answers)
    return Answers(outcome=outcome.outcome, ours=_ticks(outcome, OUR_SIDE, "internal"),
                   theirs=_ticks(outcome, THEIR_SIDE, "external"),
                   decision_makers=tuple(_clean_people(outcome.decision_makers)),
                   **_current_plan(session, outcome))


def _ticks(outcome: Outcome, side: dict, cause: str) -> tuple[str, ...]:
    """The reading's reasons that have a box on this side; "other" goes to the side of the reading's cause."""
    return tuple(r for r in side if r in outcome.reasons and (r != "other" or outcome.cause == cause))


def _current_plan(session: Session, outcome: Outcome) -> dict:
    """The plan as it stands: the recontact scheduled or held for the rep's word (its date, variant and personal
    line), else no recontact. Held rows count: "Fix it" on a held summary opens this form, and saving it unchanged
    must not cancel what was only waiting."""
    row = session.exec(select(OutboundEmail).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "recontact",
        OutboundEmail.status.in_(("scheduled", "held"))).order_by(OutboundEmail.due_at)).first()
    if row is None:
        return {"plan": "no_recontact", "recontact_on": outcome.recontact_on}
    customer = session.get(Customer, row.customer_id) if row.customer_id else None
    day = row.due_at.astimezone(customer_zone(session, customer, outcome)).date()
    chosen = "meet_decision_makers" if row.variant == "consult" else "recontact_on_date"
    return {"plan": chosen, "recontact_on": day, "personal_line": row.personal_line or ""}


def _clean_people(people) -> list[dict]:
    """Decision makers as {"name", "role"}, blanks dropped, each person once."""
    cleaned, seen = [], set()
    for person in people or ():
        name, role = (str(person.get(k) or "").strip()[:120] for k in ("name", "role"))
        if (name or role) and (name.lower(), role.lower()) not in seen:
            seen.add((name.lower(), role.lower()))
            cleaned.append({"name": name or None, "role": role or None})
    return cleaned


# ---------------------------------------------------------------------------------------------------- saving


def save_debrief(session: Session, settings: Settings, outcome: Outcome, answers: Answers,
                 *, now: datetime | None = None) -> Saved:
    """Record the answers with their time and change the plan at once (the caller commits, then enqueues)."""
    now = now or datetime.now(UTC)
    answers = _normalised(answers)
    released = status.release_held(session, outcome.id, now=now)  # the rep has spoken: what they keep may go
    debrief = debrief_for(session, outcome.id)
    previous = Answers.from_json(debrief.answers) if debrief else None
    debrief = _store(session, debrief, outcome, answers, now)
    outcome.debrief_submitted_at = outcome.debrief_submitted_at or now
    _cancel_reminders(session, outcome, now)
    _update_outcome(outcome, answers)
    replanned = _replan(session, settings, outcome, answers, debrief, now) if (
        previous is None or _plan_key(previous) != _plan_key(answers)) else []
    logger.info("outcome %s: debrief saved (plan %s, %s rows changed)", outcome.id, answers.plan, len(replanned))
    moved = {r.id for r in replanned}
    queued = [(r.id, r.due_at) for r in replanned if r.status == "scheduled"]
    _emit(session, outcome, debrief, queued, now)
    return Saved(debrief, queued + [(i, due) for i, due in released if i not in moved], len(replanned))


def _emit(session: Session, outcome: Outcome, debrief: Debrief, queued: list, now: datetime) -> None:
    """The webhook events of a submission, in its transaction: the debrief, the outcome it changed, the emails it
    (re)scheduled."""
    events.emit(session, "debrief.submitted", lambda: [(f"{debrief.id}@{now.isoformat()}",
                                                        events.debrief_object(debrief))], now=now)
    events.emit_outcomes(session, "outcome.changed", {outcome.id: f"{outcome.id}:debrief@{now.isoformat()}"}, now=now)
    events.emit_scheduled(session, queued, now=now)


def _replan(session: Session, settings: Settings, outcome: Outcome, answers: Answers, debrief: Debrief,
            now: datetime) -> list[OutboundEmail]:
    """The recontacts, then the thank-yous, brought in line with the answers; the rows that changed."""
    changed = apply_plan(session, settings, outcome, answers, anchor=debrief.submitted_at, now=now)
    return changed + _align_thank_yous(session, settings, outcome, now)


def _normalised(answers: Answers) -> Answers:
    """Trimmed texts, clean people; a won outcome plans no recontact whatever the radio said."""
    line = " ".join(answers.personal_line.split())[:MAX_PERSONAL_LINE]
    return replace(answers, personal_line=line, lesson=answers.lesson.strip()[:MAX_LESSON],
                   decision_makers=tuple(_clean_people(answers.decision_makers)),
                   plan="no_recontact" if answers.outcome == "won" else answers.plan)


def _store(session: Session, debrief: Debrief | None, outcome: Outcome, answers: Answers, now: datetime) -> Debrief:
    """Create or update the one Debrief row of this outcome."""
    if debrief is None:
        debrief = Debrief(outcome_id=outcome.id, rep_id=outcome.rep_id, submitted_at=now)
        session.add(debrief)
    debrief.answers, debrief.plan, debrief.updated_at = answers.to_json(), answers.plan, now
    debrief.recontact_on = answers.recontact_on if answers.plan in DATED_PLANS else None
    debrief.lesson = answers.lesson or None
    session.flush()
    return debrief


def _update_outcome(outcome: Outcome, answers: Answers) -> None:
    """The rep knows better than the reading: the outcome and the decision makers are theirs to correct."""
    outcome.outcome = answers.outcome
    outcome.decision_makers = list(answers.decision_makers)


def _plan_key(answers: Answers) -> tuple:
    """What the rows depend on: unchanged, a resubmission (a new lesson, say) leaves the outbox alone."""
    return (answers.outcome, answers.plan, answers.recontact_on, answers.personal_line, _variant(answers))


def _cancel_reminders(session: Session, outcome: Outcome, now: datetime) -> None:
    """The debrief is in: its reminder has nothing left to ask."""
    status.cancel(session, OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "debrief_reminder",
                  reason="debrief submitted", now=now)


# ---------------------------------------------------------------------------------------------------- the plan


def apply_plan(session: Session, settings: Settings, outcome: Outcome, answers: Answers, *, anchor: datetime,
               now: datetime) -> list[OutboundEmail]:
    """Make the outcome's recontacts match the answers; returns the rows created or changed."""
    policy = current_policy(session)
    rep = session.get(Rep, outcome.rep_id)
    changed = []
    for customer in current_customers(session, outcome):
        target = _target(session, outcome, rep, customer, answers, policy, anchor, now)
        changed += _sync_customer(session, settings, outcome, rep, customer, target, now)
    return changed


def _target(session: Session, outcome: Outcome, rep: Rep, customer: Customer, answers: Answers, policy: Policy,
            anchor: datetime, now: datetime) -> Recontact | None:
    """The recontact this customer should have under the answers, or None."""
    if not answers.writes or outcome.noemail:
        return None
    zone = customer_zone(session, customer, outcome)
    day = _target_day(answers, policy, anchor.astimezone(ZoneInfo(rep.timezone)).date())
    floor = max(now, _after_thank_you(session, outcome, customer, zone, policy) or now)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    due = next_business_slot(max(start, floor), zone, policy.recontact_time, policy)
    return Recontact(due, _variant(answers), answers.personal_line or None)


def _target_day(answers: Answers, policy: Policy, anchor_day: date) -> date:
    """The rep's date when the plan takes one, else the plan's delay from the first submission."""
    if answers.recontact_on and answers.plan in DATED_PLANS:
        return answers.recontact_on
    if answers.plan == "meet_decision_makers":
        return anchor_day + timedelta(days=policy.reason_delays.get("consult", CONSULT_DAYS))
    return anchor_day + timedelta(days=policy.default_recontact_days)


def _variant(answers: Answers) -> str:
    """consult to meet the others, the reasons' variant for a dated recontact, else default."""
    if answers.plan == "meet_decision_makers":
        return "consult"
    return recontact_variant(answers.reasons) if answers.plan == "recontact_on_date" else "default"


def _after_thank_you(session: Session, outcome: Outcome, customer: Customer, zone: ZoneInfo,
                     policy: Policy) -> datetime | None:
    """The first slot after the thank-you's day: two emails on one day read as automated."""
    thank_you = session.exec(select(OutboundEmail).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.customer_id == customer.id,
        OutboundEmail.kind == "thank_you", OutboundEmail.status.in_(("scheduled", "sending", "sent")))).first()
    if thank_you is None:
        return None
    next_day = thank_you.due_at.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=zone).astimezone(UTC)


def _sync_customer(session: Session, settings: Settings, outcome: Outcome, rep: Rep, customer: Customer,
                   target: Recontact | None, now: datetime) -> list[OutboundEmail]:
    """One scheduled recontact matching the target (moved in place, or created), the others canceled."""
    pending = _scheduled(session, outcome.id, "recontact", customer.id)
    keep = pending[0] if pending and target else None
    dropped = [row.id for row in pending if row is not keep]
    if dropped:
        status.cancel(session, OutboundEmail.id.in_(dropped),
                      reason="debrief: no recontact" if target is None else "debrief: replaced", now=now)
    if target is None:
        return pending
    blocked = _blocked(session, customer)
    if keep is not None:
        return [keep] if _move(session, keep, target, blocked, now) else []
    if _already_sent(session, outcome, customer, target):
        return []
    return [_new_recontact(session, settings, outcome, rep, customer, target, blocked)]


def _move(session: Session, row: OutboundEmail, target: Recontact, blocked: str | None, now: datetime) -> bool:
    """Bring a scheduled row to the target (unless a sender claimed it meanwhile); whether anything changed."""
    if blocked:
        changed = bool(status.cancel(session, OutboundEmail.id == row.id, reason=blocked, now=now))
        session.refresh(row)
        return changed
    current = (row.due_at, row.variant, row.personal_line)
    if current == (target.due_at, target.variant, target.personal_line):
        return False
    return status.move(session, row, now=now, due_at=target.due_at, variant=target.variant,
                       personal_line=target.personal_line)


def _already_sent(session: Session, outcome: Outcome, customer: Customer, target: Recontact) -> bool:
    """The same recontact went out already (a resubmission after it was sent must not send it twice)."""
    return session.exec(select(OutboundEmail.id).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.customer_id == customer.id,
        OutboundEmail.kind == "recontact", OutboundEmail.due_at == target.due_at,
        OutboundEmail.status.in_(("sending", "sent")))).first() is not None


def _new_recontact(session: Session, settings: Settings, outcome: Outcome, rep: Rep, customer: Customer,
                   target: Recontact, blocked: str | None) -> OutboundEmail:
    """A new recontact row; a suppressed or undeliverable customer's is born canceled."""
    row = new_outbound(settings, kind="recontact", rep=rep, to_address=customer.email, to_name=customer.name,
                       due_at=target.due_at, outcome_id=outcome.id, language=outcome.language,
                       customer_id=customer.id, variant=target.variant, canceled_reason=blocked)
    row.personal_line = target.personal_line
    session.add(row)
    session.flush()
    return row


def _align_thank_yous(session: Session, settings: Settings, outcome: Outcome, now: datetime) -> list[OutboundEmail]:
    """A corrected outcome: scheduled thank-yous take its wording; a fresh "lost" gets the thank-you it missed."""
    if outcome.outcome not in ("won", "lost"):
        return []
    changed = []
    for row in _scheduled(session, outcome.id, "thank_you"):
        if row.variant in ("won", "lost") and row.variant != outcome.outcome:
            if status.move(session, row, now=now, variant=outcome.outcome):
                changed.append(row)
    return changed + _missing_thank_yous(session, settings, outcome, now)


def _missing_thank_yous(session: Session, settings: Settings, outcome: Outcome, now: datetime) -> list[OutboundEmail]:
    """Thank-yous planning skipped because the note did not say how it ended (recent meetings only)."""
    if outcome.noemail or now - outcome.meeting_at > THANK_YOU_WINDOW:
        return []
    thanked = set(session.exec(select(OutboundEmail.customer_id).where(
        OutboundEmail.outcome_id == outcome.id, OutboundEmail.kind == "thank_you")))
    customers = [c for c in current_customers(session, outcome) if c.id not in thanked]
    rep = session.get(Rep, outcome.rep_id)
    facts = OutcomeFacts(outcome=outcome.outcome, cause=None, reasons=(), recontact_on=None,
                         meeting_at=outcome.meeting_at, rep_timezone=rep.timezone,
                         customers=tuple(_customer_facts(session, c) for c in customers))
    by_email = {c.email: c for c in customers}
    rows = [_thank_you_row(settings, outcome, rep, by_email[p.to], p) for p in plan(facts, current_policy(session), now)
            if p.kind == "thank_you"]
    session.add_all(rows)
    session.flush()
    return rows


def _thank_you_row(settings: Settings, outcome: Outcome, rep: Rep, customer: Customer, planned) -> OutboundEmail:
    return new_outbound(settings, kind="thank_you", rep=rep, to_address=customer.email, to_name=customer.name,
                        due_at=planned.due_at, outcome_id=outcome.id, language=outcome.language,
                        customer_id=customer.id, variant=planned.variant, canceled_reason=planned.canceled_reason)


def _customer_facts(session: Session, customer: Customer) -> CustomerFacts:
    return CustomerFacts(email=customer.email, name=customer.name, timezone=customer.timezone,
                         blocked=_blocked(session, customer))


# ---------------------------------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class Preview:
    """The recontact the answers would send to the first current customer; nothing is saved."""

    customer: Customer
    due_at: datetime
    zone: ZoneInfo
    subject: str
    text: str
    blocked: str | None
    others: int


def preview(session: Session, settings: Settings, outcome: Outcome, answers: Answers,
            *, now: datetime | None = None) -> Preview | None:
    """Render the recontact the plan would create, or None when it creates none."""
    now = now or datetime.now(UTC)
    answers = _normalised(answers)
    customers = current_customers(session, outcome)
    if not customers or not answers.writes or outcome.noemail:
        return None
    customer, rep = customers[0], session.get(Rep, outcome.rep_id)
    saved = debrief_for(session, outcome.id)
    target = _target(session, outcome, rep, customer, answers, current_policy(session),
                     saved.submitted_at if saved else now, now)
    subject, text = _render_recontact(session, settings, outcome, customer, answers, target)
    zone = customer_zone(session, customer, outcome)
    return Preview(customer, target.due_at, zone, subject, text, _blocked(session, customer), len(customers) - 1)


def _render_recontact(session: Session, settings: Settings, outcome: Outcome, customer: Customer, answers: Answers,
                      target: Recontact) -> tuple[str, str]:
    """Subject and text of the recontact, rendered exactly as the sender will (active template version)."""
    row = OutboundEmail(kind="recontact", variant=target.variant, language=outcome.language, rep_id=outcome.rep_id,
                        customer_id=customer.id, to_address=customer.email, to_name=customer.name,
                        due_at=target.due_at, outcome_id=outcome.id, message_id="<preview>",
                        personal_line=target.personal_line)
    context = template_context(session, row, settings)
    # The form's decision makers, not the stored ones: the preview shows what saving would send.
    context["outcome"] = outcome_words(_as_answered(outcome, answers), outcome.language)
    # A live unsubscribe link in the rep's page could be clicked by mistake: the preview shows a placeholder.
    context["links"]["unsubscribe"] = "[unsubscribe link]" if context["links"]["unsubscribe"] else ""
    rendered = render_email(session, "recontact", target.variant, outcome.language, context)
    return rendered.subject, rendered.text


def _as_answered(outcome: Outcome, answers: Answers) -> SimpleNamespace:
    """The outcome as the answers describe it, for outcome_words (never written)."""
    return SimpleNamespace(outcome=answers.outcome, cause=outcome.cause, reasons=list(outcome.reasons),
                           recontact_on=outcome.recontact_on, decision_makers=list(answers.decision_makers))


# ---------------------------------------------------------------------------------------------------- small helpers


def _scheduled(session: Session, outcome_id: int, kind: str, customer_id: int | None = None) -> list[OutboundEmail]:
    """The outcome's scheduled rows of one kind (for one customer when given), oldest first."""
    query = select(OutboundEmail).where(OutboundEmail.outcome_id == outcome_id, OutboundEmail.kind == kind,
                                        OutboundEmail.status == "scheduled")
    if customer_id is not None:
        query = query.where(OutboundEmail.customer_id == customer_id)
    return list(session.exec(query.order_by(OutboundEmail.id)))


def _blocked(session: Session, customer: Customer) -> str | None:
    """Opt-outs are absolute: suppressed or undeliverable customers get nothing."""
    return status.opt_out(customer, status.suppressed_among(session, [customer.email]))


def customer_zone(session: Session, customer: Customer | None, outcome: Outcome) -> ZoneInfo:
    """The customer's zone when known and valid, else the rep's (as planning does)."""
    rep = session.get(Rep, outcome.rep_id)
    return calendar.customer_zone(customer.timezone if customer else None, ZoneInfo(rep.timezone))
