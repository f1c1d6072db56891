"""Issue 12 through the real pipeline: spoofed reps, subject words, our threads, fake bounces, huge recipient lists."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import Session, select

from service.context import Services
from service.models import Customer, InboundMessage
from service.outbox.template_context import template_context
from service.outbox.templates import MAX_RENDERED_CHARS, render_email
from service.pipeline.polling import poller
from service.pipeline.process import ingest_files
from tests.integration.test_admin import _fresh_throttles, admin, logged_in  # noqa: F401
from tests.integration.test_cli import keepwarm  # noqa: F401
from tests.integration.test_outbox import rows
from tests.mail import recap

SPOOFED = (b"Authentication-Results: mx.acme.example; spf=fail smtp.mailfrom=evil.example; dkim=none;\n"
           b" dmarc=fail (p=reject) header.from=acme.example\nReturn-Path: <bounce@evil.example>\n")


def _inbound(engine) -> list[tuple[str, str | None, dict]]:
    with Session(engine) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.id))
        return [(r.status, r.reason, r.reading or {}) for r in rows]


def _ingest(engine, settings, tmp_path, raw: bytes) -> tuple[str, str, str | None]:
    path = tmp_path / f"{time.monotonic_ns()}.eml"
    path.write_bytes(raw)
    return ingest_files(Services.with_engine(settings, engine), [path])[0]


def test_a_spoofed_rep_from_the_mailbox_schedules_nothing(imap, engine, settings, reps):
    imap.append("INBOX", SPOOFED + recap(1, to="Winner <victim@elsewhere.example>",
                                         subject="Re: Great meeting! Claim your prize http://evil.example/"))
    imap.append("INBOX", recap(2))
    poller(settings, engine).poll_once()
    (status, reason, reading), genuine = _inbound(engine)
    assert (status, reason) == ("ignored", "unauthenticated")
    assert "dmarc=fail" in reading["ignored_detail"] and "mx.acme.example" in reading["ignored_detail"]
    assert genuine[:2] == ("processed", None)
    assert {r.to_address for r in rows(engine)} == {"jane@globex.example", "tom.baker@acme.example"}


def test_the_admin_inbox_shows_the_result_that_failed(logged_in, engine, settings, tmp_path):
    assert _ingest(engine, settings, tmp_path, SPOOFED + recap(1))[1:] == ("ignored", "unauthenticated")
    page = logged_in.get("/admin/inbox").text
    assert "unauthenticated" in page and "dmarc=fail" in page


@pytest.mark.slow
def test_keepwarm_parse_shows_the_result_that_failed(keepwarm, tmp_path):
    path = tmp_path / "spoofed.eml"
    path.write_bytes(SPOOFED + recap(1))
    line = json.loads(keepwarm("parse", str(path)).stdout)
    assert (line["accepted"], line["ignored_reason"]) == (False, "unauthenticated")
    assert "dmarc=fail" in line["ignored_detail"]


def test_a_reps_recap_titled_like_an_absence_is_read(engine, settings, reps, tmp_path):
    for n, subject in enumerate(("Vacation rentals proposal - recap", "Absence management demo - recap",
                                 "Assenza di budget per il progetto")):
        raw = recap(n, to=f"Jane <jane{n}@globex.example>", subject=subject)
        assert _ingest(engine, settings, tmp_path, raw)[1:] == ("processed", None)
    assert len(rows(engine, kind="thank_you")) == 3


def test_a_reps_new_recap_in_a_thread_where_our_thank_you_went_is_read(engine, settings, reps, tmp_path):
    _ingest(engine, settings, tmp_path, recap(1))
    ours = rows(engine, kind="thank_you")[0].message_id
    again = recap(2, subject="Re: Thank you for your time").replace(
        b"Message-ID:", f"References: {ours}\nIn-Reply-To: {ours}\nMessage-ID:".encode(), 1)
    assert _ingest(engine, settings, tmp_path, again)[1:] == ("processed", None)


def _dsn(final_recipient: str, returned_id: str, sender: str = "MAILER-DAEMON@evil.example") -> bytes:
    return (f"From: {sender}\nTo: followup@acme.example\nSubject: Undelivered Mail Returned to Sender\n"
            f"Message-ID: <dsn-{time.monotonic_ns()}@mx.example>\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            "--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
            f"Final-Recipient: rfc822; {final_recipient}\nAction: failed\nStatus: 5.1.1\n"
            "--b\nContent-Type: text/rfc822-headers\n\nFrom: Keepwarm <followup@acme.example>\n"
            f"Message-ID: {returned_id}\n--b--\n").encode()


def _undeliverable(engine) -> set[str]:
    with Session(engine) as session:
        return {c.email for c in session.exec(select(Customer).where(Customer.undeliverable))}


def test_only_a_bounce_of_an_email_we_sent_to_that_address_marks_it_undeliverable(engine, settings, reps, tmp_path):
    _ingest(engine, settings, tmp_path, recap(1))
    _ingest(engine, settings, tmp_path, recap(2, to="Bob <bob@hooli.example>"))
    janes = rows(engine, kind="thank_you", to_address="jane@globex.example")[0].message_id
    # A DSN anyone could write, one naming a message of ours that went to someone else, then the real one.
    for raw in (_dsn("jane@globex.example", "<kw.0000@keepwarm.acme.example>"),
                _dsn("jane@globex.example", "<recap-1@mail.acme.example>"),
                _dsn("bob@hooli.example", janes)):
        assert _ingest(engine, settings, tmp_path, raw)[1:] == ("ignored", "bounce")
    assert _undeliverable(engine) == set()
    _ingest(engine, settings, tmp_path, _dsn("jane@globex.example", janes, "MAILER-DAEMON@mx.globex.example"))
    assert _undeliverable(engine) == {"jane@globex.example"}


@pytest.mark.slow
def test_a_recap_to_ten_thousand_customers_is_held_and_its_summary_renders_small(engine, settings, reps, tmp_path):
    crowd = ", ".join(f"c{n}@customer{n % 97}.example" for n in range(10_000))
    assert _ingest(engine, settings, tmp_path, recap(1, to=crowd))[1:] == ("processed", None)
    assert _inbound(engine)[0][2]["hold"] == "too_many_customers"
    summary = rows(engine, kind="rep_summary")[0]
    with Session(engine) as session:
        context = template_context(session, summary, settings)
        rendered = render_email(session, "rep_summary", "default", "en", context)
    assert len(context["planned"]) <= 20 and context["more"]["customers"] == 10_000 - 10
    assert max(len(rendered.text), len(rendered.html)) < MAX_RENDERED_CHARS / 10
    assert "and 9990 more customers" in rendered.text
