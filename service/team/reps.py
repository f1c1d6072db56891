"""Reps: who may trigger follow-ups, with their time zones, languages and alternative addresses."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.db import session_scope
from service.languages import LANGUAGES
from service.models import Rep, RepAddress

NAME_LENGTH = 120
# What a name may not hold: control characters (line breaks, NUL, tab…), the Unicode line and paragraph separators
# and the bidirectional overrides. A rep's name goes into the From of the mail sent in their name, into calendar
# feeds and onto admin pages, where each of these breaks a header or a line, or makes the text read otherwise.
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def save_rep(engine: Engine, email: str, *, name: str, timezone: str, aliases=(), intake_address: str | None = None
             ) -> Rep:
    """Create or update a rep, and make them active; aliases are added (never silently moved from another rep)."""
    with session_scope(engine) as session:
        rep = upsert_rep(session, email, name=name, timezone=timezone, aliases=aliases, intake_address=intake_address)
        rep.active = True
        return rep


def upsert_rep(session: Session, email: str, *, name: str | None, timezone: str | None, aliases=(),
               language: str | None = None, default_timezone: str = "UTC", intake_address: str | None = None) -> Rep:
    """Create or update one rep in the caller's transaction; None keeps what the rep has (a new rep: a name is
    required, the zone defaults to `default_timezone`). ValueError names what is wrong, and refuses Keepwarm's own
    `intake_address` (or a plus variant) as the rep's address or an alternative one."""
    email, aliases = _address(email), tuple(aliases)  # read twice below: an iterator would be spent
    if intake_address:
        for address in (email, *map(_address, aliases)):
            check_not_intake(address, intake_address)
    if name is not None:
        check_name(name.strip())
    for zone in (timezone, None if timezone else default_timezone):
        if zone:
            _check_zone(zone)
    if language is not None:
        check_language(language)
    rep = session.exec(select(Rep).where(Rep.email == email)).first()
    if rep is None:
        if not (name or "").strip():
            raise ValueError(f"{email}: a new rep needs a name")
        rep = Rep(email=email, name=name.strip(), timezone=timezone or default_timezone)
    rep.name, rep.timezone = (name or rep.name).strip(), timezone or rep.timezone
    rep.language = language if language is not None else rep.language
    session.add(rep)
    session.flush()
    _add_aliases(session, rep, aliases)
    return rep


def _add_aliases(session: Session, rep: Rep, aliases) -> None:
    for alias in map(_address, aliases):
        owner = session.exec(select(RepAddress).where(RepAddress.email == alias)).first()
        if owner and owner.rep_id != rep.id:
            raise ValueError(f"{alias} already belongs to another rep")
        if owner is None:
            session.add(RepAddress(rep_id=rep.id, email=alias))


def check_name(name: str) -> None:
    if _NOT_IN_A_NAME.search(name):
        raise ValueError("the name holds a line break, a tab or another control character")


def check_not_intake(address: str, intake_address: str) -> None:
    """ValueError when `address` is the intake address or one of its plus variants (as intake.commands reads them):
    a rep there would make Keepwarm's own mail a rep's, and send the rep's mail to itself."""
    local, _, domain = intake_address.strip().lower().partition("@")
    their_local, _, their_domain = address.strip().lower().partition("@")
    if their_domain == domain and their_local.split("+", 1)[0] == local:
        raise ValueError(f"{address} is Keepwarm's own address (the one reps BCC): it can never be a rep's")


def check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"{language!r} is not a language Keepwarm writes in ({' or '.join(LANGUAGES)})")


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
