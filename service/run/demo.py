"""`keepwarm demo`: a sample recap in the mailbox, as a rep's BCC would put it there."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from imapclient import IMAPClient

from service.context import Services
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
    url = services.settings.imap()
    with IMAPClient(url.host, port=url.port, ssl=url.secure) as client:
        client.login(url.username or "", url.password or "")
        client.append(url.path.strip("/") or "INBOX", message.as_bytes())
    return f"appended {message['Message-ID']} from {rep} to {customer}; the poller reads it within seconds"
