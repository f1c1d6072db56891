"""Reps: who may trigger follow-ups, with their time zones and alternative addresses."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import Engine
from sqlmodel import select

from service.db import session_scope
from service.models import Rep, RepAddress


def save_rep(engine: Engine, email: str, *, name: str, timezone: str, aliases=()) -> Rep:
    """Create or update a rep; aliases are added (never silently moved from another rep)."""
    email = _address(email)
    _check_zone(timezone)
    with session_scope(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == email)).first() or Rep(email=email, name=name)
        rep.name, rep.timezone, rep.active = name.strip(), timezone, True
        session.add(rep)
        session.flush()
        for alias in map(_address, aliases):
            owner = session.exec(select(RepAddress).where(RepAddress.email == alias)).first()
            if owner and owner.rep_id != rep.id:
                raise ValueError(f"{alias} already belongs to another rep")
            if owner is None:
                session.add(RepAddress(rep_id=rep.id, email=alias))
        return rep


def _address(value: str) -> str:
    value = value.strip().lower()
    if value.count("@") != 1 or any(c.isspace() or c in "<>,;\r\n" for c in value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Rome)") from None
