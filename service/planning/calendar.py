"""The business calendar: working days, public holidays (`holidays`), company closures, send windows and
local clocks. All instants are aware and compared in UTC: ZoneInfo compares same-zone datetimes by wall clock,
which is wrong across a DST change."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from service.planning.policy import Policy

# Ten years: a longer delay, or a calendar with no business day in that span, is junk rather than policy.
MAX_DAYS = 3660


# ---------------------------------------------------------------------------------------------------- calendar


def is_business_day(day: date, policy: Policy) -> bool:
    """A working weekday of the policy that is neither a public holiday of holiday_country nor a company closure."""
    if isinstance(day, datetime):
        raise TypeError("is_business_day takes a date: convert the datetime to the right zone first")
    return (day.weekday() in policy.business_days and day not in policy.extra_holidays
            and day not in public_holidays(policy.holiday_country, day.year))


def next_business_slot(after: datetime, zone: ZoneInfo, at: time, policy: Policy) -> datetime:
    """The first instant at local time `at` on a business day in `zone` that is not before `after`, in UTC."""
    after = require_aware(after, "after")
    day = business_day_from(local_date(after, zone), policy)
    slot = local_instant(day, at, zone)
    if slot < after:
        slot = local_instant(business_day_from(day + timedelta(days=1), policy), at, zone)
    return slot


def next_send_time(earliest: datetime, zone: ZoneInfo, at: time, policy: Policy) -> datetime:
    """`earliest` (rounded up to the minute) if it is business hours in `zone`, else the next `at` slot."""
    moment = ceil_minute(earliest)
    if in_business_hours(moment, zone, policy):
        return moment
    return next_business_slot(moment, zone, at, policy)


def in_business_hours(moment: datetime, zone: ZoneInfo, policy: Policy) -> bool:
    """Inside the send window [start, end) of a business day, on the local clock."""
    local = moment.astimezone(zone)
    return is_business_day(local.date(), policy) and policy.send_window_start <= local.time() < policy.send_window_end


def business_day_from(day: date, policy: Policy) -> date:
    """`day` itself when it is a business day, else the next one."""
    for offset in range(MAX_DAYS):
        candidate = day + timedelta(days=offset)
        if is_business_day(candidate, policy):
            return candidate
    raise ValueError(f"the policy has no business day within {MAX_DAYS} days of {day}")


def add_business_days(day: date, count: int, policy: Policy) -> date:
    """The business day `count` business days after `day` (which need not be one itself)."""
    for _ in range(count):
        day = business_day_from(day + timedelta(days=1), policy)
    return day


@lru_cache(maxsize=512)
def public_holidays(country: str | None, year: int) -> frozenset[date]:
    """Public holidays (observed days included) around `year`: an observed day can spill into the next year."""
    if country is None:
        return frozenset()
    code, _, subdivision = country.partition("-")
    return frozenset(holidays.country_holidays(code, subdiv=subdivision or None, years=range(year - 1, year + 2)))


@lru_cache(maxsize=1)
def supported_countries() -> dict[str, list[str]]:
    """Country codes → subdivision codes known to `holidays` (slow to list: computed once)."""
    return holidays.list_supported_countries()


# ---------------------------------------------------------------------------------------------------- time zones


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` on the local clock of `zone`, in UTC.

    fold=0 picks the earlier of two ambiguous instants (autumn) and, for a time skipped in spring, the offset
    before the change, so a missing 02:30 becomes 03:30 new time: always one instant, never before the intent.
    """
    return datetime.combine(day, at.replace(fold=0), tzinfo=zone).astimezone(UTC)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day `moment` falls on in `zone`."""
    return moment.astimezone(zone).date()


def ceil_minute(moment: datetime) -> datetime:
    """`moment` rounded up to a whole minute, so a late email is due "now-ish" at a tidy time."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def require_aware(moment: datetime, name: str) -> datetime:
    """`moment` in UTC; a naive datetime would silently mean the server's zone, so it is refused."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def customer_zone(timezone: str | None, rep_zone: ZoneInfo) -> ZoneInfo:
    """The customer's zone when known and valid, else the rep's: a bad guess must not stop a plan."""
    zone = zone_or_none(timezone)
    if zone is None and timezone:
        logger.warning("unknown customer time zone %r: using the rep's", timezone)
    return zone or rep_zone


def zone_or_none(name: object) -> ZoneInfo | None:
    """ZoneInfo(name), or None for anything that is not a known IANA name."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None
