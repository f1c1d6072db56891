"""The audit log: one AuditEntry per admin action (who, what, on what, details, when)."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, func, select

from service.models import AuditEntry

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
_MAX_DETAIL_TEXT = 2000


def record(session: Session, action: str, *, admin_id: int | None, actor: str, target: str = "",
           detail: dict[str, Any] | None = None) -> AuditEntry:
    """Add one entry to the session (committed with the action it describes)."""
    entry = AuditEntry(admin_id=admin_id, actor=actor[:200], action=action, target=str(target)[:300],
                       detail={k: _short(v) for k, v in (detail or {}).items()})
    session.add(entry)
    logger.info("audit %s by %s on %s", action, actor, target)
    return entry


def _short(value: Any) -> Any:
    """Long texts (a whole template) are cut: the log says what happened, the versions keep the content."""
    if isinstance(value, str) and len(value) > _MAX_DETAIL_TEXT:
        return value[:_MAX_DETAIL_TEXT] + "…"
    return value


def entries(session: Session, *, action: str | None = None, page: int = 1) -> tuple[list[AuditEntry], int]:
    """One page of entries, newest first, and how many there are in all."""
    query = select(AuditEntry)
    counting = select(func.count()).select_from(AuditEntry)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
        counting = counting.where(AuditEntry.action.startswith(action))
    rows = session.exec(query.order_by(AuditEntry.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows), session.exec(counting).one()


def actions(session: Session) -> list[str]:
    """The distinct action names logged so far (for the filter)."""
    return sorted(session.exec(select(AuditEntry.action).distinct()))
