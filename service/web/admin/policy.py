"""The planning policy on the settings page: form values in, Policy.from_dict as the only judge, a new PolicyRecord out."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from service.audit import record
from service.models import PolicyRecord
from service.notes.model import REASONS
from service.planning.policy import Policy, current_policy

TIMES = ("thank_you_time", "recontact_time", "send_window_start", "send_window_end")
WHOLE_DAYS = ("default_recontact_days", "debrief_reminder_business_days")
_FIELD = re.compile(r"^policy (\w+)[: ]\s*")


def form_data(policy: Policy) -> dict[str, Any]:
    """A policy as the form's fields hold it."""
    values = policy.to_dict()
    data = {name: values[name] for name in (*TIMES, *WHOLE_DAYS, "business_days")}
    data["min_hours_after_meeting"] = f"{values['min_hours_after_meeting']:g}"
    data["holiday_country"] = values["holiday_country"] or ""
    data["extra_holidays"] = "\n".join(values["extra_holidays"])
    data["confirmation"] = values["confirmation"]
    data.update({f"delay_{reason}": values["reason_delays"].get(reason, "") for reason in REASONS})
    return data


def read_form(form) -> dict[str, Any]:
    """The JSON shape Policy.from_dict reads; numbers that do not parse stay text, for Policy to name them."""
    values: dict[str, Any] = {name: (form[name].data or "").strip() for name in TIMES}
    values.update({name: _number(form[name].data, int) for name in WHOLE_DAYS})
    values["min_hours_after_meeting"] = _number(form.min_hours_after_meeting.data, float)
    values["business_days"] = list(form.business_days.data or [])
    values["holiday_country"] = (form.holiday_country.data or "").strip() or None
    values["extra_holidays"] = (form.extra_holidays.data or "").replace(",", " ").split()
    if form.confirmation.data:  # absent: Policy's default, like every field Policy.from_dict does not get
        values["confirmation"] = form.confirmation.data
    values["reason_delays"] = {reason: _number(form[f"delay_{reason}"].data, int) for reason in REASONS
                               if (form[f"delay_{reason}"].data or "").strip()}
    return values


def _number(text: str | None, kind: type) -> Any:
    text = (text or "").strip()
    try:
        return kind(text)
    except ValueError:
        return text


def validate(values: dict[str, Any]) -> tuple[Policy | None, dict[str, str]]:
    """The policy, or an error per form field (every field is checked, not only the first bad one)."""
    errors = _delay_errors(values.get("reason_delays", {}))
    # A field found wrong is replaced by its default, so the next try can find the next wrong field.
    known_good = Policy().to_dict()
    trial = {**values, "reason_delays": {r: d for r, d in values.get("reason_delays", {}).items()
                                         if f"delay_{r}" not in errors}}
    for _ in range(len(known_good) + 1):
        try:
            policy = Policy.from_dict(trial)
            break
        except ValueError as error:
            field, message = _split(str(error))
            if field not in known_good or field in errors:
                return None, {**errors, "form": message}
            errors[field], trial[field] = message, known_good[field]
    return (None, errors) if errors else (policy, {})


def _delay_errors(delays: dict) -> dict[str, str]:
    errors = {}
    for reason, days in delays.items():
        try:
            Policy.from_dict({"reason_delays": {reason: days}})
        except ValueError as error:
            errors[f"delay_{reason}"] = _split(str(error))[1]
    return errors


def _split(message: str) -> tuple[str, str]:
    """("thank_you_time", "expected a time like '09:30'…") from "policy thank_you_time: expected…"."""
    match = _FIELD.match(message)
    if not match:
        return "form", message
    rest = message[match.end():]
    return match.group(1), rest[0].upper() + rest[1:] if rest else message


def save(session: Session, policy: Policy, actor) -> PolicyRecord:
    """A new PolicyRecord (the newest one wins), with the change in the audit log."""
    before = current_policy(session).to_dict()
    after = policy.to_dict()
    row = PolicyRecord(values=after, author=actor.email)
    session.add(row)
    changed = {name: {"from": before.get(name), "to": value} for name, value in after.items()
               if before.get(name) != value}
    record(session, "policy.save", admin_id=actor.admin_id, actor=actor.email, target="policy",
           detail={"changed": changed})
    return row
