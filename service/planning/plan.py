"""Outcome → scheduled emails: the follow-up policy as a pure function of facts, policy and now.

Rules (the issue's, plus the choices made where it was silent, marked *):
- rep_summary: always, to the rep (to=None), due exactly `now`.
- thank_you: one per customer for won ("won") and lost ("lost"), none for unknown. Due at `thank_you_time` on
  the first business day after the meeting's calendar day, both read in the customer's zone (else the rep's);
  never before meeting_at + min_hours_after_meeting, never before now. When the morning is too early, the
  next valid slot: that instant* rounded up to the minute if it falls on a business day inside the send window
  [start, end), else `thank_you_time` on the next business day (today's, if still ahead*).
- recontact: lost + cause external only, one per customer, at `recontact_time` in the customer's zone on
  recontact_on, else on the meeting's date (rep's zone*) + the smallest reason delay (else
  default_recontact_days), moved forward to a business day. *Never before the business day after that
  customer's thank-you, so a customer never gets two emails on one day (which also keeps it out of the past).
- debrief_reminder: lost with cause internal, unknown or missing*, to the rep, after
  debrief_reminder_business_days business days counted from now's date* in the rep's zone (the meeting's
  date when the mail is read promptly; a late read still gives the rep those days), at thank_you_time.
- noemail: nothing to customers; rep emails still go. Blocked customers are planned, born canceled.
- *The same address twice (any case) is one customer; an unknown customer zone falls back to the rep's;
  a meeting_at later than now (a skewed Date header) counts as now.
- Order*: rep_summary, then per customer thank_you and recontact, then debrief_reminder.
All instants are aware and compared in UTC: ZoneInfo compares same-zone datetimes by wall clock, which is
wrong across a DST change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from service.notes.model import CAUSES, OUTCOMES
from service.planning.calendar import (
    add_business_days,
    business_day_from,
    customer_zone,
    local_date,
    local_instant,
    next_send_time,
    require_aware,
    zone_or_none,
)
from service.planning.policy import Policy

logger = logging.getLogger(__name__)

_RECONTACT_VARIANTS = ("consult", "budget", "timing")
_DEBRIEF_CAUSES = ("internal", "unknown", None)


@dataclass(frozen=True)
class CustomerFacts:
    email: str
    name: str | None = None
    timezone: str | None = None  # IANA, when known
    blocked: str | None = None  # "suppressed" / "undeliverable": still planned, but born canceled with this reason


@dataclass(frozen=True)
class OutcomeFacts:
    outcome: str  # won | lost | unknown
    cause: str | None  # external | internal | unknown | None
    reasons: tuple[str, ...]
    recontact_on: date | None
    meeting_at: datetime  # aware: the email's Date
    rep_timezone: str
    customers: tuple[CustomerFacts, ...]
    noemail: bool = False  # record only: nothing to customers (rep_summary still goes)
    # The rep asked for the recontact in so many words (a plus-address date or delay, a labelled line, a recontact
    # verb naming the date): it is planned whatever the cause; the debrief may still move or cancel it.
    recontact_asked: bool = False
    held: tuple[str, ...] = ()  # the kinds of customer email that wait for the rep's confirmation (see hold_for)


@dataclass(frozen=True)
class PlannedEmail:
    kind: str  # thank_you | recontact | rep_summary | debrief_reminder
    to: str | None  # customer email, or None for the rep
    due_at: datetime  # aware, UTC
    variant: str  # thank_you: "lost"/"won"; recontact: "budget"/"timing"/"consult"/"default"; others "default"
    canceled_reason: str | None = None
    held: bool = False  # waits for the rep's confirmation


@dataclass(frozen=True)
class _Clock:
    """The instants every rule measures from (UTC) and the rep's zone."""

    meeting: datetime
    now: datetime
    rep_zone: ZoneInfo


# ---------------------------------------------------------------------------------------------------- planning


def plan(facts: OutcomeFacts, policy: Policy, now: datetime) -> list[PlannedEmail]:
    """Every email one outcome calls for (see the module docstring for the rules); naive datetimes raise ValueError."""
    clock = _make_clock(facts, now)
    emails = [PlannedEmail("rep_summary", None, clock.now, "default")]
    for customer in _customers_to_write(facts):
        emails += _plan_customer(facts, customer, policy, clock)
    if facts.outcome == "lost" and facts.cause in _DEBRIEF_CAUSES:
        emails.append(PlannedEmail("debrief_reminder", None, _debrief_reminder_due(policy, clock), "default"))
    return emails


@dataclass(frozen=True)
class Hold:
    """Which customer emails of an outcome wait for the rep's confirmation, and why (in words for the rep)."""

    reason: str
    kinds: tuple[str, ...] = ("thank_you", "recontact")


def hold_for(policy: Policy, unsure: Iterable[str], outcome: str, *, intake: str | None = None,
             recontact_asked: bool = False) -> Hold | None:
    """What must wait for the rep: every customer email when the outcome is unsure (it decides the thank-you's
    kind), only the recontact when just the cause is (it decides whether one goes) and the rep did not ask for it
    in so many words; None when all may go."""
    if outcome == "unknown":
        return None  # nothing goes to customers anyway
    if intake:  # intake's own doubt (too many customers, addresses typed in the note) holds whatever the policy
        return Hold(intake)
    if policy.confirmation == "always":
        return Hold("the policy holds every customer email for the rep's confirmation")
    unsure = set(unsure) if policy.confirmation == "unsure" else set()
    if "outcome" in unsure:
        return Hold("not sure of the outcome")
    if "cause" in unsure and outcome == "lost" and not recontact_asked:
        return Hold("not sure of the cause", ("recontact",))
    return None


def _make_clock(facts: OutcomeFacts, now: datetime) -> _Clock:
    """Check the facts and fix the instants in UTC."""
    _check_facts(facts)
    now = require_aware(now, "now")
    meeting = require_aware(facts.meeting_at, "meeting_at")
    # A Date header from the future is a skewed clock: planning from it would delay every email.
    return _Clock(meeting=min(meeting, now), now=now, rep_zone=_rep_zone(facts.rep_timezone))


def _check_facts(facts: OutcomeFacts) -> None:
    """Refuse outcomes and causes outside the vocabulary rather than guess a plan for them."""
    if facts.outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {facts.outcome!r}")
    if facts.cause is not None and facts.cause not in CAUSES:
        raise ValueError(f"cause must be one of {', '.join(CAUSES)} or None, got {facts.cause!r}")


def _customers_to_write(facts: OutcomeFacts) -> list[CustomerFacts]:
    """Customers who get mail: none for noemail or an unknown outcome; each address once."""
    if facts.noemail or facts.outcome == "unknown":
        return []
    seen: set[str] = set()
    unique = []
    for customer in facts.customers:
        key = customer.email.strip().lower()
        if key not in seen:
            seen.add(key)
            unique.append(customer)
    return unique


def _plan_customer(facts: OutcomeFacts, customer: CustomerFacts, policy: Policy, clock: _Clock) -> list[PlannedEmail]:
    """The thank-you, and the recontact for an external loss or whenever the rep asked for one, for one customer."""
    zone = _customer_zone(customer, clock.rep_zone)
    blocked = customer.blocked or None
    thank_you = _thank_you_due(zone, policy, clock)
    emails = [PlannedEmail("thank_you", customer.email, thank_you, facts.outcome, blocked, "thank_you" in facts.held)]
    if facts.outcome == "lost" and (facts.cause == "external" or (facts.recontact_asked and facts.recontact_on)):
        due = _recontact_due(facts, zone, thank_you, policy, clock)
        emails.append(PlannedEmail("recontact", customer.email, due, recontact_variant(facts.reasons), blocked,
                                   "recontact" in facts.held))
    return emails


def _thank_you_due(zone: ZoneInfo, policy: Policy, clock: _Clock) -> datetime:
    """The next business morning after the meeting, but not too soon after it and never in the past."""
    day = business_day_from(local_date(clock.meeting, zone) + timedelta(days=1), policy)
    morning = local_instant(day, policy.thank_you_time, zone)
    floor = max(clock.meeting + timedelta(hours=policy.min_hours_after_meeting), clock.now)
    if morning >= floor:
        return morning
    return next_send_time(floor, zone, policy.thank_you_time, policy)


def _recontact_due(facts: OutcomeFacts, zone: ZoneInfo, thank_you: datetime, policy: Policy, clock: _Clock) -> datetime:
    """recontact_on (else meeting + delay) on a business day, never on or before the thank-you's day."""
    day = facts.recontact_on or local_date(clock.meeting, clock.rep_zone) + timedelta(
        days=_recontact_delay(facts.reasons, policy))
    target = local_instant(business_day_from(day, policy), policy.recontact_time, zone)
    # Two emails to one customer on one day read as automated (late reads, "call me tomorrow").
    after_thank_you = business_day_from(local_date(thank_you, zone) + timedelta(days=1), policy)
    return max(target, local_instant(after_thank_you, policy.recontact_time, zone))


def _debrief_reminder_due(policy: Policy, clock: _Clock) -> datetime:
    """N business days after now's date in the rep's zone, at the thank-you hour."""
    day = add_business_days(local_date(clock.now, clock.rep_zone), policy.debrief_reminder_business_days, policy)
    return local_instant(day, policy.thank_you_time, clock.rep_zone)


def _recontact_delay(reasons: Iterable[str], policy: Policy) -> int:
    """Days from the meeting to the recontact: the smallest delay among the reasons that have one."""
    delays = [policy.reason_delays[reason] for reason in _as_reasons(reasons) if reason in policy.reason_delays]
    return min(delays, default=policy.default_recontact_days)


def recontact_variant(reasons: Iterable[str]) -> str:
    """Which recontact email fits: consult (offers to meet the other decision makers), budget, timing, else default."""
    present = set(_as_reasons(reasons))
    return next((variant for variant in _RECONTACT_VARIANTS if variant in present), "default")


def _as_reasons(reasons: Iterable[str]) -> tuple[str, ...]:
    """A lone string is one reason, not a sequence of letters."""
    return (reasons,) if isinstance(reasons, str) else tuple(reasons)


def _rep_zone(name: str) -> ZoneInfo:
    """The rep's zone; a bad one is a configuration error, so it fails loudly."""
    zone = zone_or_none(name)
    if zone is None:
        raise ValueError(f"rep_timezone is not an IANA time zone: {name!r}")
    return zone


def _customer_zone(customer: CustomerFacts, rep_zone: ZoneInfo) -> ZoneInfo:
    return customer_zone(customer.timezone, rep_zone)
