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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from service.notes.model import CAUSES, OUTCOMES, REASONS

logger = logging.getLogger(__name__)

DEFAULT_REASON_DELAYS: Mapping[str, int] = MappingProxyType({"budget": 90, "timing": 60, "consult": 14, "no_need": 180})
# Ten years: a longer delay, or a calendar with no business day in that span, is junk rather than policy.
_MAX_DAYS = 3660
_MAX_HOURS = 24 * 14
_RECONTACT_VARIANTS = ("consult", "budget", "timing")
_DEBRIEF_CAUSES = ("internal", "unknown", None)
CONFIRMATION_CHOICES = ("auto", "unsure", "always")


@dataclass(frozen=True)
class Policy:
    """When follow-ups go out; admins edit it, stored as JSON via to_dict/from_dict.

    The constructor also accepts the JSON shapes ("09:30", ISO dates, lists) and validates every field,
    raising ValueError that names the field.
    """

    thank_you_time: time = time(9, 30)
    min_hours_after_meeting: float = 3.0
    send_window_start: time = time(9, 0)
    send_window_end: time = time(18, 0)
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    holiday_country: str | None = None  # ISO code for `holidays` ("IT", "GB", "US"), or with region ("GB-SCT")
    extra_holidays: tuple[date, ...] = ()  # company closures
    recontact_time: time = time(10, 0)
    # A mapping proxy is not hashable: left out of the hash so a Policy can still key a cache.
    reason_delays: Mapping[str, int] = field(default_factory=lambda: DEFAULT_REASON_DELAYS, hash=False)
    default_recontact_days: int = 90  # external cause with no reason that has a delay
    debrief_reminder_business_days: int = 3
    # When customer emails wait for the rep's one-click confirmation in the summary: "auto" (never), "unsure"
    # (when the reader is unsure of a field that decides them) or "always".
    confirmation: str = "unsure"

    def __post_init__(self) -> None:
        """Normalise every field to its immutable, validated form."""
        for name, read in _FIELD_READERS.items():
            object.__setattr__(self, name, _read_field(name, read, getattr(self, name)))
        _check_send_window(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: times "HH:MM", dates ISO, tuples as lists."""
        return {
            "thank_you_time": _format_time(self.thank_you_time),
            "min_hours_after_meeting": self.min_hours_after_meeting,
            "send_window_start": _format_time(self.send_window_start),
            "send_window_end": _format_time(self.send_window_end),
            "business_days": list(self.business_days),
            "holiday_country": self.holiday_country,
            "extra_holidays": [day.isoformat() for day in self.extra_holidays],
            "recontact_time": _format_time(self.recontact_time),
            "reason_delays": dict(self.reason_delays),
            "default_recontact_days": self.default_recontact_days,
            "debrief_reminder_business_days": self.debrief_reminder_business_days,
            "confirmation": self.confirmation,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Policy:
        """A Policy from stored JSON: unknown keys ignored (older/newer versions), missing ones defaulted."""
        if not isinstance(data, Mapping):
            raise ValueError(f"policy: expected a JSON object, got {type(data).__name__}")
        known = {item.name for item in fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


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


def hold_for(policy: Policy, unsure: Iterable[str], outcome: str, *, intake: str | None = None) -> Hold | None:
    """What must wait for the rep: every customer email when the outcome is unsure (it decides the thank-you's
    kind), only the recontact when just the cause is (it decides whether one goes); None when all may go."""
    if outcome == "unknown":
        return None  # nothing goes to customers anyway
    if intake:  # intake's own doubt (too many customers, addresses typed in the note) holds whatever the policy
        return Hold(intake)
    if policy.confirmation == "always":
        return Hold("the policy holds every customer email for the rep's confirmation")
    unsure = set(unsure) if policy.confirmation == "unsure" else set()
    if "outcome" in unsure:
        return Hold("not sure of the outcome")
    if "cause" in unsure and outcome == "lost":
        return Hold("not sure of the cause", ("recontact",))
    return None


def _make_clock(facts: OutcomeFacts, now: datetime) -> _Clock:
    """Check the facts and fix the instants in UTC."""
    _check_facts(facts)
    now = _require_aware(now, "now")
    meeting = _require_aware(facts.meeting_at, "meeting_at")
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
    """The thank-you, and for an external loss the recontact, for one customer."""
    zone = _customer_zone(customer, clock.rep_zone)
    blocked = customer.blocked or None
    thank_you = _thank_you_due(zone, policy, clock)
    emails = [PlannedEmail("thank_you", customer.email, thank_you, facts.outcome, blocked, "thank_you" in facts.held)]
    if facts.outcome == "lost" and facts.cause == "external":
        due = _recontact_due(facts, zone, thank_you, policy, clock)
        emails.append(PlannedEmail("recontact", customer.email, due, recontact_variant(facts.reasons), blocked,
                                   "recontact" in facts.held))
    return emails


def _thank_you_due(zone: ZoneInfo, policy: Policy, clock: _Clock) -> datetime:
    """The next business morning after the meeting, but not too soon after it and never in the past."""
    day = _business_day_from(_local_date(clock.meeting, zone) + timedelta(days=1), policy)
    morning = _local_instant(day, policy.thank_you_time, zone)
    floor = max(clock.meeting + timedelta(hours=policy.min_hours_after_meeting), clock.now)
    if morning >= floor:
        return morning
    return _next_send_time(floor, zone, policy.thank_you_time, policy)


def _recontact_due(facts: OutcomeFacts, zone: ZoneInfo, thank_you: datetime, policy: Policy, clock: _Clock) -> datetime:
    """recontact_on (else meeting + delay) on a business day, never on or before the thank-you's day."""
    day = facts.recontact_on or _local_date(clock.meeting, clock.rep_zone) + timedelta(
        days=_recontact_delay(facts.reasons, policy))
    target = _local_instant(_business_day_from(day, policy), policy.recontact_time, zone)
    # Two emails to one customer on one day read as automated (late reads, "call me tomorrow").
    after_thank_you = _business_day_from(_local_date(thank_you, zone) + timedelta(days=1), policy)
    return max(target, _local_instant(after_thank_you, policy.recontact_time, zone))


def _debrief_reminder_due(policy: Policy, clock: _Clock) -> datetime:
    """N business days after now's date in the rep's zone, at the thank-you hour."""
    day = _add_business_days(_local_date(clock.now, clock.rep_zone), policy.debrief_reminder_business_days, policy)
    return _local_instant(day, policy.thank_you_time, clock.rep_zone)


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


# ---------------------------------------------------------------------------------------------------- calendar


def is_business_day(day: date, policy: Policy) -> bool:
    """A working weekday of the policy that is neither a public holiday of holiday_country nor a company closure."""
    if isinstance(day, datetime):
        raise TypeError("is_business_day takes a date: convert the datetime to the right zone first")
    return (day.weekday() in policy.business_days and day not in policy.extra_holidays
            and day not in _public_holidays(policy.holiday_country, day.year))


def next_business_slot(after: datetime, zone: ZoneInfo, at: time, policy: Policy) -> datetime:
    """The first instant at local time `at` on a business day in `zone` that is not before `after`, in UTC."""
    after = _require_aware(after, "after")
    day = _business_day_from(_local_date(after, zone), policy)
    slot = _local_instant(day, at, zone)
    if slot < after:
        slot = _local_instant(_business_day_from(day + timedelta(days=1), policy), at, zone)
    return slot


def _next_send_time(earliest: datetime, zone: ZoneInfo, at: time, policy: Policy) -> datetime:
    """`earliest` (rounded up to the minute) if it is business hours in `zone`, else the next `at` slot."""
    moment = _ceil_minute(earliest)
    if _in_business_hours(moment, zone, policy):
        return moment
    return next_business_slot(moment, zone, at, policy)


def _in_business_hours(moment: datetime, zone: ZoneInfo, policy: Policy) -> bool:
    """Inside the send window [start, end) of a business day, on the local clock."""
    local = moment.astimezone(zone)
    return is_business_day(local.date(), policy) and policy.send_window_start <= local.time() < policy.send_window_end


def _business_day_from(day: date, policy: Policy) -> date:
    """`day` itself when it is a business day, else the next one."""
    for offset in range(_MAX_DAYS):
        candidate = day + timedelta(days=offset)
        if is_business_day(candidate, policy):
            return candidate
    raise ValueError(f"the policy has no business day within {_MAX_DAYS} days of {day}")


def _add_business_days(day: date, count: int, policy: Policy) -> date:
    """The business day `count` business days after `day` (which need not be one itself)."""
    for _ in range(count):
        day = _business_day_from(day + timedelta(days=1), policy)
    return day


@lru_cache(maxsize=512)
def _public_holidays(country: str | None, year: int) -> frozenset[date]:
    """Public holidays (observed days included) around `year`: an observed day can spill into the next year."""
    if country is None:
        return frozenset()
    code, _, subdivision = country.partition("-")
    return frozenset(holidays.country_holidays(code, subdiv=subdivision or None, years=range(year - 1, year + 2)))


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    """Country codes → subdivision codes known to `holidays` (slow to list: computed once)."""
    return holidays.list_supported_countries()


# ---------------------------------------------------------------------------------------------------- time zones


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` on the local clock of `zone`, in UTC.

    fold=0 picks the earlier of two ambiguous instants (autumn) and, for a time skipped in spring, the offset
    before the change, so a missing 02:30 becomes 03:30 new time: always one instant, never before the intent.
    """
    return datetime.combine(day, at.replace(fold=0), tzinfo=zone).astimezone(UTC)


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day `moment` falls on in `zone`."""
    return moment.astimezone(zone).date()


def _ceil_minute(moment: datetime) -> datetime:
    """`moment` rounded up to a whole minute, so a late email is due "now-ish" at a tidy time."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _require_aware(moment: datetime, name: str) -> datetime:
    """`moment` in UTC; a naive datetime would silently mean the server's zone, so it is refused."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _rep_zone(name: str) -> ZoneInfo:
    """The rep's zone; a bad one is a configuration error, so it fails loudly."""
    zone = _zone_or_none(name)
    if zone is None:
        raise ValueError(f"rep_timezone is not an IANA time zone: {name!r}")
    return zone


def _customer_zone(customer: CustomerFacts, rep_zone: ZoneInfo) -> ZoneInfo:
    """The customer's zone when known and valid, else the rep's: a bad guess must not stop the plan."""
    if not customer.timezone:
        return rep_zone
    zone = _zone_or_none(customer.timezone)
    if zone is None:
        logger.warning("customer %s: unknown time zone %r, using the rep's", customer.email, customer.timezone)
    return zone or rep_zone


def _zone_or_none(name: object) -> ZoneInfo | None:
    """ZoneInfo(name), or None for anything that is not a known IANA name."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------- policy fields


def _read_field(name: str, read: Callable[[Any], Any], value: Any) -> Any:
    """read(value), with any complaint prefixed by the field's name."""
    try:
        return read(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"policy {name}: {error}") from None


def _read_time(value: Any) -> time:
    """A wall-clock time in whole minutes, from a `time` or "HH:MM"."""
    if isinstance(value, str):
        value = _parse_iso(time.fromisoformat, value, "a time like '09:30'")
    if not isinstance(value, time) or value.tzinfo is not None or value.second or value.microsecond:
        raise ValueError(f"expected a time like '09:30' (whole minutes, no zone), got {value!r}")
    return value


def _read_hours(value: Any) -> float:
    """A number of hours from 0 to two weeks (NaN and infinity fail the range check)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_HOURS:
        raise ValueError(f"expected a number of hours from 0 to {_MAX_HOURS}, got {value!r}")
    return float(value)


def _read_days(value: Any) -> int:
    """A whole number of days from 1 to ten years."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DAYS:
        raise ValueError(f"expected a whole number of days from 1 to {_MAX_DAYS}, got {value!r}")
    return value


def _read_weekday(value: Any) -> int:
    """A weekday number, Monday = 0 … Sunday = 6."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise ValueError(f"expected weekday numbers 0 (Monday) to 6 (Sunday), got {value!r}")
    return value


def _read_business_days(value: Any) -> tuple[int, ...]:
    """Distinct weekday numbers, sorted, at least one."""
    days = tuple(sorted(set(_read_list(value, _read_weekday))))
    if not days:
        raise ValueError("expected at least one business day")
    return days


def _read_date(value: Any) -> date:
    """A calendar date from a `date` or "YYYY-MM-DD" (a datetime is not a date here)."""
    if isinstance(value, str):
        value = _parse_iso(date.fromisoformat, value, "a date like '2026-12-24'")
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"expected a date like '2026-12-24', got {value!r}")
    return value


def _read_dates(value: Any) -> tuple[date, ...]:
    """Distinct dates, sorted."""
    return tuple(sorted(set(_read_list(value, _read_date))))


def _read_country(value: Any) -> str | None:
    """None, or a country code `holidays` knows, optionally with a subdivision ("GB-SCT", "US-CA")."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO country code like 'IT', got {value!r}")
    code, _, subdivision = value.strip().upper().partition("-")
    known = _supported_countries()
    if code not in known:
        raise ValueError(f"unknown country code {value!r} (expected an ISO code such as 'IT', 'GB', 'US')")
    if not subdivision:
        return code
    canonical = {name.upper(): name for name in known[code]}.get(subdivision)
    if canonical is None:
        raise ValueError(f"unknown subdivision {value!r}; {code} has {', '.join(known[code]) or 'none'}")
    return f"{code}-{canonical}"


def _read_reason_delays(value: Any) -> Mapping[str, int]:
    """Reason → days, reasons from the fixed vocabulary; read-only so a shared Policy cannot be changed."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object of reason → days, got {value!r}")
    unknown = [reason for reason in value if reason not in REASONS]
    if unknown:
        raise ValueError(f"unknown reasons {unknown!r} (known: {', '.join(REASONS)})")
    return MappingProxyType({reason: _read_days(days) for reason, days in value.items()})


def _read_choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _read_list(value: Any, read_item: Callable[[Any], Any]) -> list:
    """Each item of a list read by read_item; a string or a mapping is not a list here."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"expected a list, got {value!r}")
    return [read_item(item) for item in value]


def _parse_iso(parse: Callable[[str], Any], text: str, expected: str) -> Any:
    """parse(text), with a message that says what was expected."""
    try:
        return parse(text.strip())
    except ValueError:
        raise ValueError(f"expected {expected}, got {text!r}") from None


def _check_send_window(policy: Policy) -> None:
    """The window must be a real span and hold both sending hours, or no slot could ever be valid."""
    start, end = policy.send_window_start, policy.send_window_end
    if not start < end:
        raise ValueError(f"policy send_window_start {start:%H:%M} must be before send_window_end {end:%H:%M}")
    for name in ("thank_you_time", "recontact_time"):
        if not start <= getattr(policy, name) < end:
            raise ValueError(f"policy {name} must lie in the send window {start:%H:%M}–{end:%H:%M}")


def _format_time(value: time) -> str:
    """ "HH:MM" (policy times are whole minutes)."""
    return value.strftime("%H:%M")


_FIELD_READERS: dict[str, Callable[[Any], Any]] = {
    "thank_you_time": _read_time,
    "min_hours_after_meeting": _read_hours,
    "send_window_start": _read_time,
    "send_window_end": _read_time,
    "business_days": _read_business_days,
    "holiday_country": _read_country,
    "extra_holidays": _read_dates,
    "recontact_time": _read_time,
    "reason_delays": _read_reason_delays,
    "default_recontact_days": _read_days,
    "debrief_reminder_business_days": _read_days,
    "confirmation": lambda value: _read_choice(value, CONFIRMATION_CHOICES),
}
