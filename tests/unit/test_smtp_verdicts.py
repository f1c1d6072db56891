"""Which SMTP refusals condemn the customer's address (only RCPT 5.1.x / 5.2.1) and which say nothing about it."""

from __future__ import annotations

import pytest

from service.outbox.transport import address_refused

CONDEMN = ["550 5.1.1 <jane@globex.example>: Recipient address rejected: User unknown",
           "550 5.1.10 Recipient address rejected: null MX", "553 5.1.3 bad address syntax",
           "550 5.2.1 The email account that you tried to reach is disabled"]
KEEP = ["550 5.1.0 <followup@acme.example>: Sender address rejected: User unknown in local recipient table",
        "553 5.1.8 <followup@acme.example>: Sender address rejected: Domain not found",
        "550 5.1.7 bad sender mailbox syntax", "554 5.7.1 <jane@globex.example>: Relay access denied",
        "550 mailbox unavailable", "552 5.2.2 mailbox full", "450 4.1.1 try again later",
        "530 5.7.0 Authentication required"]


@pytest.mark.parametrize("reply", CONDEMN)
def test_a_bad_or_disabled_mailbox_condemns_the_address(reply):
    code, text = reply.split(" ", 1)
    assert address_refused(int(code), text)


@pytest.mark.parametrize("reply", KEEP)
def test_a_refusal_about_our_sender_the_relay_or_without_a_status_keeps_the_customer(reply):
    code, text = reply.split(" ", 1)
    assert not address_refused(int(code), text)
