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


# ---------------------------------------------------------------------------------------------------- issue 12

class _Reps:
    """The conventions' registered reps; no Message-ID seen before."""

    def rep(self, address):
        from service.intake.reading import RepInfo

        known = {"tom.baker@acme.example": RepInfo(2, "tom.baker@acme.example", "Tom Baker", "Europe/London")}
        return known.get(address.lower())

    def seen(self, message_id):
        return False


def _read(headers: str, body: str = "Hi Jane,\n\nthe budget isn't there until Q3.\n\nTom", **overrides):
    from service.intake.reading import read_raw
    from service.settings import load_settings

    settings = load_settings({"intake_address": INTAKE, "internal_domains": ("acme.example",), **overrides},
                             environ={}, env_file=None)
    return read_raw((headers.strip() + "\n\n" + body).encode(), settings, _Reps())


_RECAP = ("From: Tom Baker <tom.baker@acme.example>\nTo: Jane <jane@globex.example>\nSubject: Our meeting\n"
          "Message-ID: <recap-1@mail.acme.example>\nDate: Fri, 20 Nov 2026 15:00:00 +0000\n")


@pytest.mark.parametrize("results", [
    "mx.acme.example; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=acme.example",
    "mx.acme.example; spf=fail; dkim=none; dmarc=fail",
    "mx.acme.example; spf=fail smtp.mailfrom=acme.example; dkim=none",
    "mx.acme.example; spf=fail smtp.mailfrom=acme.example; dkim=pass header.d=evil.example",
    # Exchange Online writes no authserv-id.
    "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=acme.example; dkim=none (message not signed) header.d=none;"
    "dmarc=fail action=oreject header.from=acme.example;compauth=fail reason=000",
])
def test_a_spoofed_rep_is_unauthenticated_and_says_which_result_failed(results):
    reading = _read(f"Authentication-Results: {results}\n{_RECAP}")
    assert (reading.accepted, reading.ignored_reason) == (False, "unauthenticated")
    assert "fail" in reading.ignored_detail


@pytest.mark.parametrize("results", [
    "mx.acme.example; spf=pass smtp.mailfrom=tom.baker@acme.example; dkim=pass header.d=acme.example; "
    "dmarc=pass header.from=acme.example",
    "mx.acme.example; spf=fail smtp.mailfrom=acme.example; dkim=pass header.i=@acme.example header.s=s1",
    "mx.acme.example; spf=softfail smtp.mailfrom=acme.example; dkim=none",
])
def test_a_rep_whose_mail_fails_nothing_is_read(results):
    reading = _read(f"Authentication-Results: {results}\n{_RECAP}")
    assert reading.accepted and reading.sender_auth


def test_with_no_result_a_rep_is_accepted_unless_a_pass_is_required():
    assert _read(_RECAP).accepted
    required = _read(_RECAP, require_sender_auth=True, trusted_authserv_ids=("mx.acme.example",))
    assert required.ignored_reason == "unauthenticated" and "asks for a pass" in required.ignored_detail
    passing = "Authentication-Results: mx.acme.example; dmarc=pass header.from=acme.example\n"
    assert _read(passing + _RECAP, require_sender_auth=True, trusted_authserv_ids=("mx.acme.example",)).accepted


def test_only_trusted_authserv_ids_count_and_by_default_only_the_topmost_header():
    forged_pass = "Authentication-Results: mx.acme.example; dmarc=pass header.from=acme.example\n"
    real_fail = "Authentication-Results: mx.corp.example; dmarc=fail header.from=acme.example\n"
    trusted = {"trusted_authserv_ids": ("mx.corp.example",)}
    # The attacker's header sits below the one our MTA adds on top, or carries an id we do not trust.
    assert _read(real_fail + forged_pass + _RECAP).ignored_reason == "unauthenticated"
    assert _read(forged_pass + real_fail + _RECAP, **trusted).ignored_reason == "unauthenticated"
    assert _read(forged_pass + _RECAP, require_sender_auth=True, **trusted).ignored_reason == "unauthenticated"
    assert _read(real_fail.replace("corp", "elsewhere") + _RECAP, **trusted).accepted


def test_more_customers_than_the_cap_marks_the_reading_too_many_customers():
    to = ", ".join(f"c{n}@customer{n}.example" for n in range(21))
    headers = _RECAP.replace("To: Jane <jane@globex.example>", f"To: {to}")
    assert _read(headers).hold == "too_many_customers"
    assert _read(headers, max_customers_per_message=21).hold is None
    assert _read(headers, max_customers_per_message=0).hold is None
    assert _read(_RECAP).hold is None
    assert gate.customer_hold(20, 20) is None and gate.customer_hold(21, 20) == "too_many_customers"


@pytest.mark.parametrize("subject", ["Absence management demo - recap", "Vacation rentals proposal - recap",
                                     "Assenza di budget per il progetto"])
def test_a_subject_word_never_silences_a_reps_recap_to_a_customer(subject):
    reading = _read(_RECAP.replace("Subject: Our meeting", f"Subject: {subject}"))
    assert reading.accepted, reading.ignored_reason
    # Headers still decide, and a subject still counts for mail that is not a rep's to a customer.
    auto = _read(_RECAP.replace("Subject: Our meeting", f"Subject: {subject}\nAuto-Submitted: auto-replied"))
    assert auto.ignored_reason == "auto_reply"
    stranger = _RECAP.replace("tom.baker@acme.example", "bill@initech.example")
    assert _read(stranger.replace("Subject: Our meeting", f"Subject: {subject}")).ignored_reason == "auto_reply"


def test_a_rep_writing_to_a_customer_in_our_thread_is_a_new_note_not_own_mail():
    ours = "References: <kw.1f2e@keepwarm.acme.example>\nIn-Reply-To: <kw.1f2e@keepwarm.acme.example>\n"
    assert _read(ours + _RECAP).accepted
    customer_reply = ours + _RECAP.replace("Tom Baker <tom.baker@acme.example>", "Jane <jane@globex.example>")
    assert _read(customer_reply).ignored_reason == "own_mail"
    to_us_only = ours + _RECAP.replace("To: Jane <jane@globex.example>", f"To: {INTAKE}")
    answer = _read(to_us_only)  # the rep answering our email: read as an answer, never as a new note
    assert (answer.accepted, answer.answers, answer.customers) == (True, ["<kw.1f2e@keepwarm.acme.example>"], [])
    sent_by_us = _RECAP.replace("<recap-1@mail.acme.example>", "<kw.9a@keepwarm.acme.example>")
    assert _read(sent_by_us).ignored_reason == "own_mail"


def _dsn(returned_message_id: str, sender: str = "MAILER-DAEMON@evil.example") -> str:
    return (f"From: {sender}\nTo: {INTAKE}\nSubject: Undelivered Mail Returned to Sender\n"
            "Message-ID: <dsn-1@evil.example>\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.evil.example\n\n"
            "Final-Recipient: rfc822; jane@globex.example\nAction: failed\nStatus: 5.1.1\n"
            "--b\nContent-Type: text/rfc822-headers\n\nFrom: Tom Baker <followup@acme.example>\n"
            f"To: jane@globex.example\nMessage-ID: {returned_message_id}\n--b--\n")


def test_a_bounce_names_addresses_only_when_it_returns_one_of_our_messages():
    fake = _read(_dsn("<whatever@evil.example>"), body="")
    assert (fake.ignored_reason, fake.bounced, fake.reports_on) == ("bounce", [], [])
    assert "none of our messages" in fake.ignored_detail
    real = _read(_dsn("<kw.77aa@keepwarm.acme.example>", "MAILER-DAEMON@mx.globex.example"), body="")
    assert (real.bounced, real.reports_on) == (["jane@globex.example"], ["<kw.77aa@keepwarm.acme.example>"])
