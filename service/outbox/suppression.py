"""Opt-outs: an address on the suppression list never gets another email, whatever arrives later."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlmodel import Session, select

from service.models import PENDING_STATUSES, OutboundEmail, Suppression

logger = logging.getLogger(__name__)


def suppress(session: Session, email: str, reason: str) -> int:
    """Add the address (once) and cancel everything still scheduled for it; returns how many were canceled."""
    email = email.strip().lower()
    if session.exec(select(Suppression.id).where(Suppression.email == email)).first() is None:
        session.add(Suppression(email=email, reason=reason))
    pending = session.exec(select(OutboundEmail).where(OutboundEmail.to_address == email,
                                                       OutboundEmail.status.in_(PENDING_STATUSES))).all()
    for row in pending:
        row.status, row.canceled_reason, row.updated_at = "canceled", "suppressed", datetime.now(UTC)
    logger.info("suppressed %s (%s): %s scheduled emails canceled", email, reason, len(pending))
    return len(pending)


def is_suppressed(session: Session, email: str) -> bool:
    return session.exec(select(Suppression.id).where(Suppression.email == email.strip().lower())).first() is not None
