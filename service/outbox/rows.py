"""New outgoing emails: the values of a row and its Message-ID, made once (a resend reuses it)."""

from __future__ import annotations

import uuid
from datetime import datetime

from service.models import OutboundEmail, Rep, utcnow
from service.settings import Settings


def mint_message_id(settings: Settings) -> str:
    """A Message-ID made once per row, in our own domain (which is how replies to us are recognised)."""
    return f"<kw.{uuid.uuid4().hex}@{settings.message_id_domain}>"


def outbound_values(settings: Settings, *, kind: str, rep_id: int, to_address: str, to_name: str | None,
                    due_at: datetime, outcome_id: int | None, language: str, customer_id: int | None = None,
                    variant: str = "default", canceled_reason: str | None = None, held: bool = False) -> dict:
    """The column values of a new outbound row: born scheduled, held for the rep, or canceled with its reason."""
    now = utcnow()
    return {"kind": kind, "variant": variant, "language": language, "rep_id": rep_id, "customer_id": customer_id,
            "to_address": to_address, "to_name": to_name, "due_at": due_at, "outcome_id": outcome_id,
            "message_id": mint_message_id(settings),
            "status": "canceled" if canceled_reason else "held" if held else "scheduled",
            "canceled_reason": canceled_reason, "attempts": 0, "created_at": now, "updated_at": now}


def new_outbound(settings: Settings, *, kind: str, rep: Rep, to_address: str, to_name: str | None,
                 due_at: datetime, outcome_id: int | None, language: str, customer_id: int | None = None,
                 variant: str = "default", canceled_reason: str | None = None) -> OutboundEmail:
    """A new row as an ORM object (the caller adds it to its session)."""
    return OutboundEmail(**outbound_values(settings, kind=kind, rep_id=rep.id, to_address=to_address,
                                           to_name=to_name, due_at=due_at, outcome_id=outcome_id, language=language,
                                           customer_id=customer_id, variant=variant,
                                           canceled_reason=canceled_reason))
