"""Settings, reps, suppression, inbox, outbox, audit log and queues over HTTP, against real Redis and SQLite."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from rq.job import Job
from sqlmodel import Session, select

from service import context
from service.context import Services
from service.models import (
    AuditEntry,
    Customer,
    InboundMessage,
    OutboundEmail,
    PolicyRecord,
    Rep,
    RepAddress,
    Suppression,
)
from service.outbox.rows import new_outbound
from service.pipeline.process import ingest_files
from service.planning.policy import current_policy
from service.run.worker import BoundedWorker
from tests.integration.test_admin import _fresh_throttles, admin, csrf_token, logged_in  # noqa: F401
from tests.mail import recap


def _audit(engine) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(e.action, e.target) for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]


def _policy_form(token: str, **changes) -> dict:
    form = {"csrf_token": token, "thank_you_time": "09:30", "recontact_time": "10:00", "send_window_start": "09:00",
            "send_window_end": "18:00", "min_hours_after_meeting": "3", "business_days": ["0", "1", "2", "3", "4"],
            "holiday_country": "", "extra_holidays": "", "default_recontact_days": "90",
            "debrief_reminder_business_days": "3", "delay_budget": "90", "delay_timing": "60",
            "delay_consult": "14", "delay_no_need": "180"}
    return {**form, **changes}


# ---------------------------------------------------------------------------------------------------- settings


def test_settings_show_the_policy_and_the_identity_read_only(logged_in, settings):
    page = logged_in.get("/admin/settings")
    assert page.status_code == 200
    assert 'name="thank_you_time"' in page.text and 'value="09:30"' in page.text
    assert settings.intake_address in page.text and "KEEPWARM_SEND_AS_REP" in page.text
    assert 'name="intake_address"' not in page.text and 'name="send_as_rep"' not in page.text


def test_saving_the_policy_adds_a_record_the_planner_uses(logged_in, engine):
    token = csrf_token(logged_in, "/admin/settings")
    response = logged_in.post("/admin/settings", data=_policy_form(
        token, thank_you_time="08:45", send_window_start="08:00", holiday_country="it",
        extra_holidays="2026-12-24\n2026-12-31", business_days=["0", "1", "2", "3"], delay_budget="",
        delay_price="30"))
    assert response.status_code == 302
    with Session(engine) as session:
        policy = current_policy(session)
        newest = session.exec(select(PolicyRecord).order_by(PolicyRecord.id.desc())).first()
        assert newest.author == "ada@acme.example"
    assert policy.thank_you_time.strftime("%H:%M") == "08:45" and policy.holiday_country == "IT"
    assert policy.business_days == (0, 1, 2, 3) and len(policy.extra_holidays) == 2
    assert dict(policy.reason_delays) == {"timing": 60, "consult": 14, "no_need": 180, "price": 30}
    [(action, target)] = [a for a in _audit(engine) if a[0] == "policy.save"]
    assert target == "policy"


def test_policy_errors_are_shown_next_to_each_field_and_nothing_is_saved(logged_in, engine):
    token = csrf_token(logged_in, "/admin/settings")
    response = logged_in.post("/admin/settings", data=_policy_form(
        token, thank_you_time="25:00", holiday_country="XX", default_recontact_days="soon", delay_timing="-4",
        business_days=[]))
    assert response.status_code == 422
    text = unescape(response.text)
    for field, words in (("thank_you_time", "a time like '09:30'"), ("holiday_country", "Unknown country code"),
                         ("default_recontact_days", "whole number of days"), ("delay_timing", "whole number"),
                         ("business_days", "at least one business day")):
        assert words in text, field
    assert 'id="thank_you_time-error"' in response.text and 'aria-invalid="true"' in response.text
    with Session(engine) as session:
        assert [r.author for r in session.exec(select(PolicyRecord))] == ["tests"]  # the suite's own, nothing new


def test_a_window_that_closes_before_it_opens_is_refused(logged_in, engine):
    token = csrf_token(logged_in, "/admin/settings")
    response = logged_in.post("/admin/settings", data=_policy_form(token, send_window_start="19:00"))
    assert response.status_code == 422 and "must be before send_window_end" in unescape(response.text)


# ---------------------------------------------------------------------------------------------------- reps


def test_add_a_rep_with_an_alias_then_edit_and_disable(logged_in, engine):
    token = csrf_token(logged_in, "/admin/reps")
    response = logged_in.post("/admin/reps", data={"csrf_token": token, "email": "Mia.Rossi@Acme.example",
                                                   "name": "Mia Rossi", "timezone": "Europe/Rome",
                                                   "aliases": "mia@acme.example", "active": "y"})
    assert response.status_code == 302
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "mia.rossi@acme.example")).one()
        assert (rep.timezone, rep.active) == ("Europe/Rome", True)
        assert session.exec(select(RepAddress).where(RepAddress.rep_id == rep.id)).one().email == "mia@acme.example"
    edit = f"/admin/reps/{rep.id}"
    assert "mia@acme.example" in logged_in.get(edit).text
    logged_in.post(edit, data={"csrf_token": token, "email": "someone.else@acme.example", "name": "Mia R.",
                               "timezone": "Europe/London", "aliases": "", "active": "y"})
    logged_in.post(f"{edit}/aliases/remove", data={"csrf_token": token, "alias": "mia@acme.example"})
    logged_in.post(f"{edit}/disable", data={"csrf_token": token})
    with Session(engine) as session:
        rep = session.get(Rep, rep.id)
        assert (rep.email, rep.name, rep.timezone, rep.active) == ("mia.rossi@acme.example", "Mia R.",
                                                                   "Europe/London", False)
        assert session.exec(select(RepAddress).where(RepAddress.rep_id == rep.id)).all() == []
    assert [a for a, _ in _audit(engine) if a.startswith("rep.")] == ["rep.add", "rep.save", "rep.alias_remove",
                                                                       "rep.disable"]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("timezone", "Mars/Olympus", "not an IANA time zone"),
    ("email", "not an address", "Enter one email address"),
    ("aliases", "anna@acme.example", "already belongs to another rep"),
])
def test_a_bad_rep_is_refused_with_a_reason(logged_in, engine, field, value, words):
    token = csrf_token(logged_in, "/admin/reps")
    data = {"csrf_token": token, "email": "new.rep@acme.example", "name": "New Rep", "timezone": "UTC",
            "aliases": "", "active": "y", field: value}
    response = logged_in.post("/admin/reps", data=data)
    assert response.status_code == 422 and words in unescape(response.text)


def test_the_reps_page_lists_the_reps_with_their_aliases(logged_in):
    page = logged_in.get("/admin/reps")
    assert "anna.bianchi@acme.example" in page.text and "anna@acme.example" in page.text
    assert 'list="timezones"' in page.text and '<option value="Europe/Rome">' in page.text


# ---------------------------------------------------------------------------------------------------- suppression


def _scheduled(engine, settings, address: str = "jane@globex.example", **values) -> int:
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        customer = session.exec(select(Customer).where(Customer.email == address)).first() or Customer(
            email=address, name="Jane")
        session.add(customer)
        session.flush()
        row = new_outbound(settings, kind=values.get("kind", "thank_you"), variant=values.get("variant", "lost"),
                           rep=rep, to_address=address, to_name="Jane", outcome_id=None, language="en",
                           due_at=values.get("due_at", datetime.now(UTC) + timedelta(days=2)),
                           customer_id=customer.id)
        session.add(row)
        session.commit()
        return row.id


def test_suppress_an_address_cancels_its_emails_and_removal_asks_first(logged_in, engine, settings):
    outbound_id = _scheduled(engine, settings)
    token = csrf_token(logged_in, "/admin/suppression")
    response = logged_in.post("/admin/suppression", data={"csrf_token": token, "email": "Jane@Globex.example",
                                                          "reason": "asked by phone"})
    assert response.status_code == 302
    with Session(engine) as session:
        row = session.exec(select(Suppression)).one()
        assert (row.email, row.reason) == ("jane@globex.example", "asked by phone")
        assert session.get(OutboundEmail, outbound_id).canceled_reason == "suppressed"
    assert "jane@globex.example" in logged_in.get("/admin/suppression?q=globex").text
    assert "jane@globex.example" not in logged_in.get("/admin/suppression?q=initech").text
    confirm = logged_in.get(f"/admin/suppression/{row.id}/remove")
    assert confirm.status_code == 200 and "Yes, remove it" in confirm.text
    with Session(engine) as session:
        assert session.exec(select(Suppression)).all()  # a GET changes nothing
    assert logged_in.post(f"/admin/suppression/{row.id}/remove", data={"csrf_token": token}).status_code == 302
    with Session(engine) as session:
        assert session.exec(select(Suppression)).all() == []
    assert [a for a, _ in _audit(engine) if a.startswith("suppression")] == ["suppression.add",
                                                                              "suppression.remove"]


# ---------------------------------------------------------------------------------------------------- inbox


@pytest.fixture
def inbox(engine, settings, tmp_path):
    """A processed recap, an ignored stranger's mail, a quarantined message with a script tag in its source."""
    paths = []
    for n, sender in ((1, "Tom Baker <tom.baker@acme.example>"), (2, "Eve <eve@elsewhere.example>")):
        path = tmp_path / f"{n}.eml"
        path.write_bytes(recap(n, sender=sender))
        paths.append(path)
    ingest_files(Services.with_engine(settings, engine), paths)
    raw = b"Subject: <script>alert(1)</script>\r\n\r\n" + b"A" * 300_000
    with Session(engine) as session:
        session.add(InboundMessage(mailbox="INBOX", message_id="<big@x>", raw=raw, size=len(raw),
                                   status="quarantined", reason="failed 3 times: boom"))
        session.commit()
        return {r.status: r.id for r in session.exec(select(InboundMessage))}


def test_the_inbox_lists_and_filters_by_status_with_reasons(logged_in, inbox):
    page = logged_in.get("/admin/inbox")
    assert "processed" in page.text and "unknown_sender" in page.text and "failed 3 times: boom" in page.text
    quarantined = logged_in.get("/admin/inbox?status=quarantined")
    assert "failed 3 times" in quarantined.text and "unknown_sender" not in quarantined.text
    assert logged_in.get("/admin/inbox?status=nonsense").status_code == 200


def test_the_raw_source_is_escaped_and_capped(logged_in, inbox):
    page = logged_in.get(f"/admin/inbox/{inbox['quarantined']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Only the first 256 KB" in page.text and page.text.count("A") < 270_000
    assert logged_in.get("/admin/inbox/9999").status_code == 404


def test_reprocess_sets_new_and_enqueues_the_intake_job(logged_in, inbox, engine, redis):
    token = csrf_token(logged_in, "/admin/inbox")
    response = logged_in.post(f"/admin/inbox/{inbox['ignored']}/reprocess", data={"csrf_token": token})
    assert response.status_code == 302
    with Session(engine) as session:
        assert session.get(InboundMessage, inbox["ignored"]).status == "new"
    queue = context.current().queue("intake")
    [job] = [Job.fetch(i, connection=redis) for i in queue.job_ids]
    assert job.func_name == "jobs.intake.process_message" and job.args == (inbox["ignored"],)
    BoundedWorker([queue], connection=redis).work(burst=True)
    with Session(engine) as session:
        row = session.get(InboundMessage, inbox["ignored"])
        assert (row.status, row.reason) == ("ignored", "unknown_sender")
    assert ("inbox.reprocess", f"inbound {inbox['ignored']}") in _audit(engine)


def test_reprocess_reads_inline_when_redis_is_down(settings, engine, reps, inbox):
    from service import create_app
    from service.team.admins import create_admin
    from tests.integration.test_admin import login

    down = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    client = down.test_client()
    create_admin(engine, "ada@acme.example", "correct horse battery")
    login(client)
    token = csrf_token(client, "/admin/inbox")
    response = client.post(f"/admin/inbox/{inbox['quarantined']}/reprocess", data={"csrf_token": token},
                           follow_redirects=True)
    assert "read again here (Redis is unavailable)" in response.text
    with Session(engine) as session:
        assert session.get(InboundMessage, inbox["quarantined"]).status != "new"


# ---------------------------------------------------------------------------------------------------- outbox


def test_the_outbox_filters_by_status_and_kind(logged_in, engine, settings):
    thank_you = _scheduled(engine, settings)
    recontact = _scheduled(engine, settings, kind="recontact", variant="budget")
    page = logged_in.get("/admin/outbox?status=scheduled&kind=recontact")
    assert f'href="/admin/outbox/{recontact}"' in page.text and f'href="/admin/outbox/{thank_you}"' not in page.text
    assert f'href="/admin/outbox/{thank_you}"' in logged_in.get("/admin/outbox").text
    assert f'href="/admin/outbox/{thank_you}"' not in logged_in.get("/admin/outbox?status=sent").text


def test_an_email_is_shown_rendered_as_the_sender_would(logged_in, engine, settings):
    outbound_id = _scheduled(engine, settings)
    page = logged_in.get(f"/admin/outbox/{outbound_id}")
    assert page.status_code == 200
    assert "Dear Jane," in page.text and "srcdoc=" in page.text and "0 (shipped default)" in page.text


def test_cancel_and_send_now_from_the_outbox(logged_in, engine, settings, redis):
    first, second = _scheduled(engine, settings), _scheduled(engine, settings, address="ola@nordic.example")
    token = csrf_token(logged_in, "/admin/outbox")
    assert logged_in.post(f"/admin/outbox/{first}/cancel", data={"csrf_token": token}).status_code == 302
    assert logged_in.post(f"/admin/outbox/{second}/send_now", data={"csrf_token": token, "back": "list"},
                          ).headers["Location"] == "/admin/outbox"
    with Session(engine) as session:
        canceled, due = session.get(OutboundEmail, first), session.get(OutboundEmail, second)
    assert canceled.status == "canceled" and canceled.canceled_reason == "canceled by ada@acme.example"
    assert due.due_at <= datetime.now(UTC)
    assert f"send-{second}" in context.current().queue("outbox").job_ids
    page = logged_in.post(f"/admin/outbox/{first}/send_now", data={"csrf_token": token}, follow_redirects=True)
    assert "is canceled: nothing to do" in page.text
    assert [a for a, _ in _audit(engine) if a.startswith("outbox")] == ["outbox.cancel", "outbox.send_now",
                                                                         "outbox.send_now"]


# ---------------------------------------------------------------------------------------------------- audit, queues


def test_the_audit_log_shows_who_did_what(logged_in, engine, settings):
    outbound_id = _scheduled(engine, settings)
    token = csrf_token(logged_in, "/admin/outbox")
    logged_in.post(f"/admin/outbox/{outbound_id}/cancel", data={"csrf_token": token})
    page = logged_in.get("/admin/audit")
    assert "outbox.cancel" in page.text and f"outbound {outbound_id}" in page.text and "ada@acme.example" in page.text
    only_logins = logged_in.get("/admin/audit?action=login")
    assert "outbox.cancel" not in only_logins.text.split("<tbody>")[1]


def boom() -> None:
    raise RuntimeError("the queue page must show this")


def test_queue_health_counts_jobs_and_shows_the_last_failures(logged_in, redis):
    queue = context.current().queue("maintenance")
    queue.enqueue(boom)
    queue.enqueue_at(datetime.now(UTC) + timedelta(hours=1), boom)
    context.current().queue("outbox").enqueue(boom)
    BoundedWorker([queue], connection=redis).work(burst=True)
    page = logged_in.get("/admin/queues")
    assert page.status_code == 200
    names = re.findall(r'<th scope="row"[^>]*>([^<]+)</th>', page.text)
    assert names == ["intake", "outbox", "maintenance", "webhooks"]
    counts = re.findall(r'data-label="(Waiting|Scheduled|Failed)" class="num">(?:<span class="badge bad">)?(\d+)',
                        page.text)
    assert counts[:3] == [("Waiting", "0"), ("Scheduled", "0"), ("Failed", "0")]  # intake
    assert counts[3:6] == [("Waiting", "1"), ("Scheduled", "0"), ("Failed", "0")]  # outbox: one waiting
    assert counts[6:9] == [("Waiting", "0"), ("Scheduled", "1"), ("Failed", "1")]  # maintenance
    assert counts[9:] == [("Waiting", "0"), ("Scheduled", "0"), ("Failed", "0")]  # webhooks
    assert "the queue page must show this" in page.text and "test_admin_pages.boom" in page.text


def test_queue_health_says_when_redis_is_down(settings, engine, reps):
    from service import create_app
    from service.team.admins import create_admin
    from tests.integration.test_admin import login

    client = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0")).test_client()
    create_admin(engine, "ada@acme.example", "correct horse battery")
    login(client)
    page = client.get("/admin/queues")
    assert page.status_code == 200 and "Redis does not answer" in page.text


def test_the_home_page_counts_what_needs_an_eye(logged_in, engine, settings):
    _scheduled(engine, settings)
    page = logged_in.get("/admin/")
    assert "<strong>1</strong>emails scheduled" in page.text


def test_the_admin_chooses_when_customer_emails_wait_for_the_rep(logged_in, engine):
    token = csrf_token(logged_in, "/admin/settings")
    assert "Customer emails wait for the rep" in logged_in.get("/admin/settings").text
    assert logged_in.post("/admin/settings", data=_policy_form(token, confirmation="always")).status_code == 302
    with Session(engine) as session:
        assert current_policy(session).confirmation == "always"
    response = logged_in.post("/admin/settings", data=_policy_form(token, confirmation="sometimes"))
    assert response.status_code == 422
    with Session(engine) as session:
        assert current_policy(session).confirmation == "always"
