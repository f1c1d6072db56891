"""The follow-up policy admins edit on the settings page: when each kind of email goes out, stored as JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any

from sqlmodel import Session, select

from service.models import PolicyRecord
from service.notes.model import REASONS
from service.planning.calendar import MAX_DAYS, supported_countries

DEFAULT_REASON_DELAYS: Mapping[str, int] = MappingProxyType({"budget": 90, "timing": 60, "consult": 14, "no_need": 180})
_MAX_HOURS = 24 * 14
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


def current_policy(session: Session) -> Policy:
    """The newest policy an admin saved, else the defaults."""
    record = session.exec(select(PolicyRecord).order_by(PolicyRecord.id.desc())).first()
    return Policy.from_dict(record.values) if record else Policy()


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
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise ValueError(f"expected a whole number of days from 1 to {MAX_DAYS}, got {value!r}")
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
    known = supported_countries()
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
