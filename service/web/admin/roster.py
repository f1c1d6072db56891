"""Reps and the suppression list as the admin pages change them (each change is audited)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.audit import record
from service.db import session_scope
from service.models import Customer, OutboundEmail, Rep, RepAddress, Suppression
from service.outbox.status import suppress
from service.team.feeds import feed_url, revoke_feed, webcal_url
from service.team.rep_import import ImportReport, import_reps
from service.team.reps import upsert_rep
from service.tokens import Signer

SUPPRESSION_PAGE = 500


def reps(session: Session) -> list[tuple[Rep, list[str]]]:
    """Every rep (active first, then by email) with their alternative addresses."""
    aliases: dict[int, list[str]] = {}
    for alias in session.exec(select(RepAddress).order_by(RepAddress.email)):
        aliases.setdefault(alias.rep_id, []).append(alias.email)
    rows = session.exec(select(Rep).order_by(Rep.active.desc(), Rep.email))
    return [(rep, aliases.get(rep.id, [])) for rep in rows]


def rep_with_aliases(session: Session, rep_id: int) -> tuple[Rep, list[str]] | None:
    """One rep and their alternative addresses, or None."""
    rep = session.get(Rep, rep_id)
    if rep is None:
        return None
    return rep, list(session.exec(select(RepAddress.email).where(RepAddress.rep_id == rep_id)))


def save(engine: Engine, form, actor, *, rep_id: int | None = None, intake_address: str | None = None) -> Rep:
    """Create or update a rep from the form, in one transaction with its audit entry (ValueError names what is
    wrong, Keepwarm's own `intake_address` among it)."""
    aliases = (form.aliases.data or "").replace(",", " ").split()
    email = form.email.data if rep_id is None else _email_of(engine, rep_id)
    with session_scope(engine) as session:
        row = upsert_rep(session, email, name=form.name.data, timezone=form.timezone.data.strip(), aliases=aliases,
                         intake_address=intake_address)
        row.language = form.language.data or None
        row.active = bool(form.active.data)
        record(session, "rep.save" if rep_id else "rep.add", admin_id=actor.admin_id, actor=actor.email,
               target=row.email, detail={"name": row.name, "timezone": row.timezone, "language": row.language,
                                         "active": row.active, "aliases_added": aliases})
        return row


def import_csv(services, data: bytes, actor, *, dry_run: bool) -> ImportReport:
    """The reps of a CSV file, checked (dry run) or written; ImportRefused for a file that cannot be read."""
    return import_reps(services.engine, data, dry_run=dry_run, default_timezone=services.settings.timezone,
                       actor=actor.email, admin_id=actor.admin_id, intake_address=services.settings.intake_address)


def calendar_link(services, rep: Rep) -> dict:
    """The rep's feed URL, as is and as webcal://, for the admin to pass on."""
    url = feed_url(Signer(services.settings), rep)
    return {"url": url, "webcal": webcal_url(url)}


def revoke_calendar(session: Session, rep_id: int, actor) -> Rep | None:
    """A new calendar key for the rep: the feed URL they subscribed to answers 410 from now on."""
    rep = session.get(Rep, rep_id)
    if rep is not None:
        revoke_feed(rep)
        record(session, "rep.calendar_revoke", admin_id=actor.admin_id, actor=actor.email, target=rep.email)
    return rep


def _email_of(engine: Engine, rep_id: int) -> str:
    with session_scope(engine) as session:
        rep = session.get(Rep, rep_id)
        if rep is None:
            raise LookupError(f"no rep {rep_id}")
        return rep.email


def set_active(session: Session, rep_id: int, active: bool, actor) -> Rep | None:
    """Enable or disable a rep (a disabled rep's mail is ignored)."""
    rep = session.get(Rep, rep_id)
    if rep is not None:
        rep.active = active
        record(session, "rep.enable" if active else "rep.disable", admin_id=actor.admin_id, actor=actor.email,
               target=rep.email)
    return rep


def remove_alias(session: Session, rep_id: int, alias: str, actor) -> bool:
    """Take an alternative address off a rep."""
    row = session.exec(select(RepAddress).where(RepAddress.rep_id == rep_id,
                                                RepAddress.email == alias.strip().lower())).first()
    if row is None:
        return False
    session.delete(row)
    record(session, "rep.alias_remove", admin_id=actor.admin_id, actor=actor.email, target=row.email,
           detail={"rep_id": rep_id})
    return True


def suppressions(session: Session, search: str = "") -> list[Suppression]:
    """The newest suppressed addresses, optionally those containing `search`."""
    query = select(Suppression)
    if search.strip():
        query = query.where(Suppression.email.contains(search.strip().lower()))
    return list(session.exec(query.order_by(Suppression.created_at.desc()).limit(SUPPRESSION_PAGE)))


def undeliverable(session: Session, search: str = "") -> list[Customer]:
    """Customers marked undeliverable (a refused address or a hard bounce), optionally those containing `search`."""
    query = select(Customer).where(Customer.undeliverable)
    if search.strip():
        query = query.where(Customer.email.contains(search.strip().lower()))
    return list(session.exec(query.order_by(Customer.email).limit(SUPPRESSION_PAGE)))


def add_suppression(session: Session, email: str, reason: str, actor) -> int:
    """Suppress the address and cancel its scheduled emails; returns how many were canceled."""
    canceled = suppress(session, email, reason.strip() or "added by an admin")
    record(session, "suppression.add", admin_id=actor.admin_id, actor=actor.email, target=email.strip().lower(),
           detail={"reason": reason, "canceled": canceled})
    return canceled


def remove_suppression(session: Session, suppression_id: int, actor) -> Suppression | None:
    """Take an address off the list; emails canceled because of it stay canceled (they were never re-planned)."""
    row = session.get(Suppression, suppression_id)
    if row is not None:
        session.delete(row)
        record(session, "suppression.remove", admin_id=actor.admin_id, actor=actor.email, target=row.email,
               detail={"reason_was": row.reason})
    return row


def pending_for(session: Session, email: str) -> int:
    """How many scheduled emails an address has (shown before suppressing it)."""
    return len(session.exec(select(OutboundEmail.id).where(OutboundEmail.to_address == email,
                                                           OutboundEmail.status == "scheduled")).all())
