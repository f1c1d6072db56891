"""The gate's rules and the plus-address commands, on focused cases."""

from __future__ import annotations

import pytest

from service.intake import gate
from service.intake.commands import is_intake_address, read_commands
from service.intake.mime import read_letter

INTAKE = "followup@acme.example"


def _letter(headers: str, body: str = "hello") -> object:
    return read_letter((headers.strip() + "\n\n" + body).encode())


@pytest.mark.parametrize("headers", [
    "From: MAILER-DAEMON@mx.example\nSubject: whatever",
    "From: postmaster@mx.example\nSubject: whatever",
    "From: a@b.example\nX-Failed-Recipients: tom@globex.example\nSubject: x",
    "From: a@b.example\nReturn-Path: <>\nSubject: Undelivered Mail Returned to Sender",
    "From: a@b.example\nReturn-Path: <>\nSubject: Mancato recapito del messaggio",
    "From: a@b.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=b",
])
def test_bounces_are_recognised_whoever_sent_them(headers):
    assert gate.is_bounce(_letter(headers))


@pytest.mark.parametrize("headers", [
    "From: a@b.example\nAuto-Submitted: auto-replied\nSubject: Re: hi",
    "From: a@b.example\nX-Autoreply: yes\nSubject: Re: hi",
    "From: a@b.example\nPrecedence: bulk\nSubject: news",
    "From: a@b.example\nList-Id: <team.lists.example>\nSubject: news",
    "From: a@b.example\nSubject: Automatic reply: our meeting",
    "From: a@b.example\nSubject: Risposta automatica: incontro",
    "From: a@b.example\nSubject: Fuori sede fino al 3 gennaio",
    "From: a@b.example\nSubject: Out of Office: back Monday",
])
def test_auto_replies_are_recognised(headers):
    assert gate.is_auto_reply(_letter(headers))


@pytest.mark.parametrize("headers", [
    "From: a@b.example\nAuto-Submitted: no\nSubject: Our meeting",
    "From: a@b.example\nSubject: Re: the office move, automatically approved?",
    "From: a@b.example\nSubject: About your absence policy question",
])
def test_ordinary_mail_is_not_an_auto_reply(headers):
    assert not gate.is_auto_reply(_letter(headers))


def test_own_mail_by_sender_or_by_answering_our_message_ids():
    domain = "keepwarm.acme.example"
    assert gate.is_own_mail(_letter("From: Keepwarm <followup@acme.example>"), INTAKE, domain)
    assert gate.is_own_mail(_letter("From: followup+lost@acme.example"), INTAKE, domain)
    assert gate.is_own_mail(_letter("From: t@x.example\nIn-Reply-To: <send-12@keepwarm.acme.example>"), INTAKE, domain)
    assert not gate.is_own_mail(_letter("From: t@x.example\nIn-Reply-To: <a@mail.acme.example>"), INTAKE, domain)


def test_bounced_addresses_come_from_structured_fields_first():
    raw = ("From: MAILER-DAEMON@mx.example\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           "--b\nContent-Type: text/plain\n\nCould not deliver to someone@else.example\n"
           "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
           "Final-Recipient: rfc822; tom@globex.example\nAction: failed\nStatus: 5.1.1\n--b--\n")
    assert gate.bounced_addresses(read_letter(raw.encode())) == ("tom@globex.example",)


def test_plus_commands_are_read_from_any_intake_variant():
    commands = read_commands(["jane@globex.example", "followup+lost+3m@acme.example"], INTAKE)
    assert (commands.outcome, commands.recontact, commands.noemail) == ("lost", "3m", False)
    assert read_commands(["followup+2027-03-01+noemail@acme.example"], INTAKE).recontact == "2027-03-01"
    assert read_commands(["followup+noemail@acme.example"], INTAKE).noemail
    assert read_commands(["followup@acme.example"], INTAKE) is None
    assert read_commands(["followup+lost@other.example"], INTAKE) is None


def test_intake_address_variants():
    assert is_intake_address("FollowUp+won@ACME.example", INTAKE)
    assert not is_intake_address("followups@acme.example", INTAKE)
