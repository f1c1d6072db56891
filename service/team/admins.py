"""Admins: hashed passwords, sessions that logout ends everywhere, the audited password check, and the signed
links that invite an admin or reset a password (no table: the link names the admin and their session version).

How often a login may be tried (per IP, then per address, counted in Redis for every web process) is the web
layer's: service/web/admin/throttle.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from service.audit import record
from service.db import session_scope
from service.models import Admin
from service.tokens import Signer, TokenError

logger = logging.getLogger(__name__)

WARN_AFTER_FAILURES = 5  # failures in a row on one admin's address from which each next one is logged as a warning
MIN_PASSWORD_LENGTH = 10
# Checked against when the address is unknown, so a wrong address costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("keepwarm-dummy-password")


class LoginRefused(Exception):
    """Why a login did not succeed; the message is safe to show (it never says whether the address exists)."""


WRONG = "The email or the password is wrong."


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; refuses anything that is not one plain address."""
    email = (email or "").strip().lower()
    if email.count("@") != 1 or any(c.isspace() or c in "<>,;\"'" for c in email) or email.startswith("@"):
        raise ValueError(f"{email!r} is not an email address")
    return email


def submitted_address(email: str | None) -> str:
    """What a login form's address is logged and counted as: lower-cased, trimmed, short, valid or not."""
    return (email or "").strip().lower()[:200]


def check_password_strength(password: str) -> None:
    """Refuse a password shorter than MIN_PASSWORD_LENGTH."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_admin(engine: Engine, email: str, password: str) -> Admin:
    """Create an admin, or give one a new password: re-enabled, failures forgotten, every session ended."""
    email = normalise_email(email)
    check_password_strength(password)
    with session_scope(engine) as session:
        admin = session.exec(select(Admin).where(Admin.email == email)).first() or Admin(email=email, password_hash="")
        admin.password_hash = generate_password_hash(password)
        admin.active, admin.failed_logins = True, 0
        end_sessions(admin)
        session.add(admin)
        session.flush()
        return admin


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None) -> Admin:
    """The admin for these credentials, or LoginRefused; failures in a row are counted on the admin's row."""
    now = now or datetime.now(UTC)
    admin = _find(session, email)
    if admin is None:
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginRefused(WRONG)
    if not check_password_hash(admin.password_hash, password or ""):
        _count_failure(admin)
        raise LoginRefused(WRONG)
    admin.failed_logins, admin.last_login_at = 0, now
    return admin


def _find(session: Session, email: str) -> Admin | None:
    try:
        email = normalise_email(email)
    except ValueError:
        return None
    return session.exec(select(Admin).where(Admin.email == email, Admin.active == True)).first()  # noqa: E712


def _count_failure(admin: Admin) -> None:
    """One more failure in a row (how soon the next try may come is the throttle's: nothing here refuses it)."""
    admin.failed_logins += 1
    if admin.failed_logins >= WARN_AFTER_FAILURES:
        logger.warning("admin %s: %s failed logins in a row", admin.email, admin.failed_logins)


def session_token(admin: Admin, secret: str) -> str:
    """Changes with the password and the session version: either change ends every session of the admin."""
    material = f"{admin.password_hash}:{admin.session_version}"
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()[:20]


def end_sessions(admin: Admin) -> None:
    """Every session of this admin stops working at its next request (logout, a new password)."""
    admin.session_version = (admin.session_version or 0) + 1


def log_out_everywhere(engine: Engine, admin_id: int) -> None:
    """Logout: end this admin's sessions on every browser, including any copy of the cookie."""
    with session_scope(engine) as session:
        admin = session.get(Admin, admin_id)
        if admin is not None:
            end_sessions(admin)


def attempt_login(engine: Engine, email: str, password: str, *, ip: str) -> Admin:
    """The password check; every password checked is in the audit log (the caller throttles the tries)."""
    with session_scope(engine) as session:
        outcome = _check(session, email, password)
        if isinstance(outcome, LoginRefused):
            key = submitted_address(email)
            record(session, "login.failed", admin_id=None, actor=key, target=key, detail={"ip": ip})
        else:
            record(session, "login", admin_id=outcome.id, actor=outcome.email, target=outcome.email,
                   detail={"ip": ip})
    if isinstance(outcome, LoginRefused):
        raise outcome  # after the commit: the failure count and the audit entry must stick
    return outcome


def _check(session: Session, email: str, password: str) -> Admin | LoginRefused:
    try:
        return authenticate(session, email, password)
    except LoginRefused as refused:
        return refused


# ---------------------------------------------------------------------------------------------------- password links

INVITE, RESET = "admin-invite", "admin-reset"  # a link's purpose, also the salt that keeps one from being the other
PASSWORD_LINK_DAYS = 2  # an invitation or a reset link works for 48 hours
NOT_VALID = "This link is not valid: it was changed, or it was not made by this Keepwarm."
EXPIRED = f"This link has expired: links work for {PASSWORD_LINK_DAYS * 24} hours."
USED = "This link was already used, or the password changed since it was made."


class LinkRefused(Exception):
    """Why a password link cannot be used; the message is safe to show."""


def every_admin(session: Session) -> list[Admin]:
    """Every admin, by address (the invited ones, without a password yet, included)."""
    return list(session.exec(select(Admin).order_by(Admin.email)))


def invite_admin(engine: Engine, email: str, *, actor_id: int, actor: str) -> Admin:
    """An admin without a password (nobody can log in as them) until their invitation link is used; audited.

    Inviting a pending address again is allowed (a fresh link); an admin with a password gets a reset instead."""
    email = normalise_email(email)
    with session_scope(engine) as session:
        admin = session.exec(select(Admin).where(Admin.email == email)).first() or Admin(email=email, password_hash="")
        if admin.password_hash:
            raise ValueError(f"{email} is already an admin: send them a password reset link instead")
        admin.active = True
        session.add(admin)
        session.flush()
        record(session, "admin.invite", admin_id=actor_id, actor=actor, target=email)
        return admin


def reset_admin(engine: Engine, admin_id: int, *, actor_id: int, actor: str) -> tuple[Admin, str]:
    """The admin and the link purpose for a new password (an invitation again if they never set one); audited."""
    with session_scope(engine) as session:
        admin = session.get(Admin, admin_id)
        if admin is None or not admin.active:
            raise LookupError(f"no active admin {admin_id}")
        purpose = RESET if admin.password_hash else INVITE
        record(session, "admin.reset" if purpose == RESET else "admin.invite", admin_id=actor_id, actor=actor,
               target=admin.email)
        return admin, purpose


def password_link_token(signer: Signer, admin: Admin, purpose: str) -> str:
    """A signed token naming the admin and their session version: setting a password raises it, so it works once."""
    return signer.make(purpose, {"admin": admin.id, "email": admin.email, "version": admin.session_version})


def admin_for_link(session: Session, signer: Signer, purpose: str, token: str) -> Admin:
    """The admin a password link is for, or LinkRefused saying why (expired, used, or not ours)."""
    try:
        claim = signer.read(purpose, token, max_age_days=PASSWORD_LINK_DAYS)
    except TokenError as error:
        raise LinkRefused(EXPIRED if error.expired else NOT_VALID) from None
    admin = session.get(Admin, claim.get("admin")) if isinstance(claim.get("admin"), int) else None
    if admin is None or admin.email != claim.get("email") or not admin.active:
        raise LinkRefused(NOT_VALID)
    if admin.session_version != claim.get("version") or (purpose == INVITE and admin.password_hash):
        raise LinkRefused(USED)
    return admin


def set_password_by_link(engine: Engine, signer: Signer, purpose: str, token: str, password: str) -> Admin:
    """Use a link: the new password, every session of the admin ended, the link spent; audited.

    The update is conditional on the version the link names, so two uses racing cannot both succeed."""
    check_password_strength(password)
    with session_scope(engine) as session:
        admin = admin_for_link(session, signer, purpose, token)
        changed = session.execute(
            update(Admin).where(Admin.id == admin.id, Admin.session_version == admin.session_version)
            .values(password_hash=generate_password_hash(password), failed_logins=0,
                    session_version=admin.session_version + 1))
        if changed.rowcount != 1:
            raise LinkRefused(USED)
        record(session, f"{'admin.invite' if purpose == INVITE else 'admin.reset'}.used", admin_id=admin.id,
               actor=admin.email, target=admin.email)
        session.flush()
        session.refresh(admin)
        return admin
