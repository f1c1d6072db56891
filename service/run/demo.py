"""`keepwarm demo`: a sample recap in the mailbox, as a rep's BCC would put it there; `--reply`: the rep's answer
to the summary that followed."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlmodel import select

from service.context import Services
from service.db import session_scope
from service.models import OutboundEmail
from service.settings import SettingsError
from service.team.reps import save_rep

_RECAP = """Hi Maria,

thank you for your time today and for walking me through how your team works.
I understand the budget for this isn't there until Q3, and that your CFO, Paolo Neri,
will want to look at the numbers before anything moves. Happy to pick this up again then.

Best regards,
{rep_name}
"""


def append_demo_recap(services: Services, *, rep: str, customer: str) -> str:
    """Register the demo rep if needed and APPEND one recap BCC'd to the intake address."""
    services.settings.imap()  # before anything is saved: without a mailbox there is no demo
    rep_name = "Demo Rep"
    save_rep(services.engine, rep, name=rep_name, timezone=services.settings.timezone)
    message = EmailMessage()
    message["From"] = f"{rep_name} <{rep}>"
    message["To"] = f"Maria Rossi <{customer}>"
    message["Delivered-To"] = services.settings.intake_address
    message["Subject"] = "Thank you for today's meeting"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=rep.split("@")[1])
    message.set_content(_RECAP.format(rep_name=rep_name))
    _append(services, message, "the recap")
    return f"appended {message['Message-ID']} from {rep} to {customer}; the poller reads it within seconds"


def append_demo_reply(services: Services, *, rep: str, words: str) -> str:
    """APPEND the rep's reply to their latest summary ("recontact in June"), as their mail client would send it."""
    with session_scope(services.engine) as session:
        summary = session.exec(select(OutboundEmail).where(
            OutboundEmail.kind == "rep_summary", sa.func.lower(OutboundEmail.to_address) == rep.lower())
            .order_by(OutboundEmail.id.desc())).first()
        if summary is None:
            raise SettingsError(f"no summary to {rep} yet: run `keepwarm demo` first and wait for it to be read")
        summary_id = summary.message_id
    message = EmailMessage()
    message["From"] = f"Demo Rep <{rep}>"
    message["To"] = f"Keepwarm <{services.settings.intake_address}>"
    message["Subject"] = "Re: Keepwarm: your summary"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=rep.split("@")[1])
    message["In-Reply-To"] = message["References"] = summary_id
    message.set_content(f"{words}\n\nOn {message['Date']}, Keepwarm wrote:\n> Here is what I understood...\n")
    _append(services, message, "the reply")
    return f"appended {message['Message-ID']} from {rep}, answering {summary_id}: \"{words}\""


def _append(services: Services, message: EmailMessage, what: str) -> None:
    url = services.settings.imap()
    try:
        with IMAPClient(url.host, port=url.port, ssl=url.secure, timeout=30) as client:
            client.login(url.username or "", url.password or "")
            client.append(url.path.strip("/") or "INBOX", message.as_bytes())
    except (OSError, IMAPClientError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SettingsError(f"KEEPWARM_IMAP_URL: the mailbox {url.redacted()} did not take {what} ({reason}): "
                            "is it running? (`keepwarm run` starts one)") from error
