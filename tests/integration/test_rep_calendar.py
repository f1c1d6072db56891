"""A rep's calendar feed (/calendar/<token>.ics): parsed with icalendar, stable UIDs, canceled emails gone, revoked
and forged URLs refused; the link in the rep's summary and on the admin's rep page."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Calendar
from itsdangerous import URLSafeSerializer
from sqlmodel import Session, select

from service.models import AuditEntry, Customer, OutboundEmail, Outcome, OutcomeCustomer, Rep
from service.outbox import status
from service.outbox.rows import new_outbound
from service.outbox.template_context import template_context
from service.team.feeds import feed_token, feed_url, revoke_feed
from service.tokens import Signer
from tests.integration.test_admin import _fresh_throttles, admin, csrf_token, logged_in  # noqa: F401

ANNA = "anna.bianchi@acme.example"
NOW = datetime.now(UTC).replace(microsecond=0)


def _rep(engine, email: str = ANNA) -> Rep:
    with Session(engine) as session:
        return session.exec(select(Rep).where(Rep.email == email)).one()


def _plan(engine, settings, email: str = ANNA, *, customer: str = "jane@globex.example") -> dict[str, int]:
    """A lost meeting of the rep's with its recontact, debrief reminder, thank-you and summary rows; their ids."""
    rep = _rep(engine, email)
    with Session(engine) as session:
        person = Customer(email=customer, name="Jane Doe")
        outcome = Outcome(rep_id=rep.id, outcome="lost", cause="external", reasons=["budget", "timing"],
                          meeting_at=NOW - timedelta(hours=2), meeting_subject="Licences for 2027", language="en")
        session.add_all([person, outcome])
        session.flush()
        session.add(OutcomeCustomer(outcome_id=outcome.id, customer_id=person.id))
        rows = {kind: new_outbound(settings, kind=kind, rep=rep, to_address=customer if to_customer else rep.email,
                                   to_name=None, due_at=NOW + timedelta(days=days), outcome_id=outcome.id,
                                   language="en", customer_id=person.id if to_customer else None)
                for kind, days, to_customer in (("recontact", 90, True), ("debrief_reminder", 3, False),
                                                ("thank_you", 1, True), ("rep_summary", 0, False))}
        session.add_all(rows.values())
        session.commit()
        return {kind: row.id for kind, row in rows.items()}


def _url_path(settings, rep: Rep) -> str:
    return feed_url(Signer(settings), rep).removeprefix(settings.base_url)


def _events(client, path: str) -> dict[str, dict]:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.data)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_the_feed_has_one_event_per_pending_recontact_and_reminder_with_stable_uids(client, engine, settings):
    ids = _plan(engine, settings)
    path = _url_path(settings, _rep(engine))
    first, again = _events(client, path), _events(client, path)
    with Session(engine) as session:
        rows = {kind: session.get(OutboundEmail, i) for kind, i in ids.items()}
    expected = {rows["recontact"].message_id.strip("<>"), rows["debrief_reminder"].message_id.strip("<>")}
    assert set(first) == set(again) == expected
    recontact = first[rows["recontact"].message_id.strip("<>")]
    assert recontact.decoded("DTSTART") == rows["recontact"].due_at
    assert "Jane Doe" in str(recontact["SUMMARY"]) and str(recontact["SUMMARY"]).startswith("Recontact")
    description = str(recontact["DESCRIPTION"])
    assert "jane@globex.example" in description and "budget, timing" in description
    assert f"{settings.base_url}/manage/postpone/" in str(recontact["URL"])
    reminder = first[rows["debrief_reminder"].message_id.strip("<>")]
    assert f"{settings.base_url}/debrief/" in str(reminder["URL"]) and "Jane Doe" in str(reminder["SUMMARY"])


def test_a_canceled_email_leaves_the_feed_and_a_postponed_one_moves(client, engine, settings):
    ids = _plan(engine, settings)
    path = _url_path(settings, _rep(engine))
    with Session(engine) as session:
        status.cancel(session, OutboundEmail.id == ids["debrief_reminder"], reason="canceled by the rep")
        moved = status.postpone(session, ids["recontact"], days=7)
        session.commit()
        recontact_uid = session.get(OutboundEmail, ids["recontact"]).message_id.strip("<>")
    events = _events(client, path)
    assert list(events) == [recontact_uid]
    assert events[recontact_uid].decoded("DTSTART") == moved


def test_the_feed_shows_only_the_rep_s_own_emails_in_the_rep_s_language(client, engine, settings):
    _plan(engine, settings, "tom.baker@acme.example", customer="bob@initech.example")
    _plan(engine, settings)
    with Session(engine) as session:
        session.get(Rep, _rep(engine).id).language = "it"
        session.commit()
    events = _events(client, _url_path(settings, _rep(engine)))
    assert len(events) == 2
    assert all("bob@initech.example" not in str(e["DESCRIPTION"]) for e in events.values())
    assert {str(e["SUMMARY"]).split(":")[0] for e in events.values()} == {"Ricontatto", "Promemoria debrief"}


def test_a_revoked_url_answers_410_and_the_new_one_works(client, engine, settings):
    _plan(engine, settings)
    old = _url_path(settings, _rep(engine))
    with Session(engine) as session:
        revoke_feed(session.get(Rep, _rep(engine).id))
        session.commit()
    new = _url_path(settings, _rep(engine))
    assert new != old
    assert client.get(old).status_code == 410
    assert len(_events(client, new)) == 2


@pytest.mark.parametrize("token", [
    "tampered",  # one character of the signature changed
    "forged",  # the right payload signed with another secret
    "other rep",  # a payload naming another rep, its signature copied from ours
    "debrief",  # a token made for another page
    "junk",
])
def test_a_forged_or_tampered_url_is_refused(client, engine, settings, token):
    rep = _rep(engine)
    signer = Signer(settings)
    good = feed_token(signer, rep)
    payload, signature = good.rsplit(".", 1)
    made = {"tampered": f"{payload}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
            "forged": URLSafeSerializer("another-secret", salt="keepwarm.calendar").dumps({"rep": rep.id, "key": ""}),
            "other rep": URLSafeSerializer("x").dumps({"rep": rep.id + 1, "key": ""}).rsplit(".", 1)[0]
            + f".{signature}",
            "debrief": signer.make("debrief", {"outcome": 1, "rep": rep.id}),
            "junk": "not-a-token"}[token]
    assert client.get(f"/calendar/{made}.ics").status_code == 404
    assert client.get(f"/calendar/{good}.ics").status_code == 200


def test_a_disabled_rep_s_feed_is_refused(client, engine, settings):
    path = _url_path(settings, _rep(engine))
    with Session(engine) as session:
        session.get(Rep, _rep(engine).id).active = False
        session.commit()
    assert client.get(path).status_code == 404


def test_the_rep_s_mail_carries_the_feed_and_the_customer_s_never(engine, settings, reps):
    ids = _plan(engine, settings)
    with Session(engine) as session:
        summary = template_context(session, session.get(OutboundEmail, ids["rep_summary"]), settings)
        thank_you = template_context(session, session.get(OutboundEmail, ids["thank_you"]), settings)
    assert summary["links"]["calendar"] == feed_url(Signer(settings), _rep(engine))
    assert thank_you["links"]["calendar"] == ""


def test_the_admin_sees_the_url_and_revokes_it(logged_in, engine, settings):
    rep = _rep(engine)
    old = _url_path(settings, rep)
    page = logged_in.get(f"/admin/reps/{rep.id}")
    assert feed_url(Signer(settings), rep) in page.text and "webcal://" in page.text
    refused = logged_in.post(f"/admin/reps/{rep.id}/calendar/revoke", data={})
    assert refused.status_code in (302, 400) and logged_in.get(old).status_code == 200  # no CSRF token: nothing
    token = csrf_token(logged_in, f"/admin/reps/{rep.id}")
    assert logged_in.post(f"/admin/reps/{rep.id}/calendar/revoke", data={"csrf_token": token}).status_code == 302
    assert logged_in.get(old).status_code == 410
    assert logged_in.get(_url_path(settings, _rep(engine))).status_code == 200
    with Session(engine) as session:
        assert session.exec(select(AuditEntry.action).where(AuditEntry.target == ANNA)).all() == [
            "rep.calendar_revoke"]


# ---------------------------------------------------------------------------------------------------- language


def test_a_rep_with_a_language_gets_their_mail_in_it_and_the_customer_in_the_note_s(engine, settings, reps, tmp_path):
    from service.context import Services
    from service.pipeline.process import ingest_files
    from tests.mail import recap

    with Session(engine) as session:
        session.get(Rep, _rep(engine, "tom.baker@acme.example").id).language = "it"
        session.commit()
    path = tmp_path / "recap.eml"
    path.write_bytes(recap(1))  # an English note of Tom's
    ingest_files(Services.with_engine(settings, engine), [path])
    with Session(engine) as session:
        languages = {row.kind: row.language for row in session.exec(select(OutboundEmail))}
    assert languages["rep_summary"] == "it" and languages["thank_you"] == "en"


def test_the_debrief_thank_you_page_links_the_feed(client, engine, settings):
    from service.models import Debrief
    from service.outbox.template_context import debrief_url

    _plan(engine, settings)
    rep = _rep(engine)
    with Session(engine) as session:
        outcome = session.exec(select(Outcome).where(Outcome.rep_id == rep.id)).one()
        session.add(Debrief(outcome_id=outcome.id, rep_id=rep.id, answers={}))
        session.commit()
        link = debrief_url(Signer(settings), outcome, rep).removeprefix(settings.base_url)
    page = client.get(f"{link}?saved=1")
    assert page.status_code == 200 and f'href="{feed_url(Signer(settings), rep)}"' in page.text


# ---------------------------------------------------------------------------------------------------- security review

EVIL = "Mallory\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:injected\rX-INJECTED:1\n\x00\x0b\u2028"


@pytest.mark.parametrize("where", ["rep name", "customer name"])
def test_line_breaks_and_control_characters_in_names_cannot_inject_into_the_feed(client, engine, settings, where):
    """A rep's name (a CSV cell may hold line breaks) or a customer's name with CR, LF, NUL: the feed still answers,
    with the same events, and no property of the attacker's. icalendar leaves X-WR-CALNAME unescaped (a lone CR
    passes raw, an LF fails an assertion), so the feed has to."""
    ids = _plan(engine, settings)
    evil = EVIL if engine.dialect.name == "sqlite" else EVIL.replace("\x00", "")  # PostgreSQL text holds no NUL
    with Session(engine) as session:
        if where == "rep name":
            session.get(Rep, _rep(engine).id).name = evil
        else:
            session.exec(select(Customer)).one().name = evil
        session.commit()
    response = client.get(_url_path(settings, _rep(engine)))
    assert response.status_code == 200
    body = response.data
    assert b"\x00" not in body and b"\x0b" not in body and "\u2028".encode() not in body
    assert b"\r" not in body.replace(b"\r\n", b"")  # no lone CR, which some readers take for a line break
    unfolded = body.replace(b"\r\n ", b"")
    lines = unfolded.split(b"\r\n")
    assert not any(line.startswith((b"X-INJECTED", b"SUMMARY:injected")) for line in lines)
    assert lines.count(b"BEGIN:VEVENT") == 2
    events = {str(e["UID"]): e for e in Calendar.from_ical(body).walk("VEVENT")}
    assert len(events) == 2
    with Session(engine) as session:
        uid = session.get(OutboundEmail, ids["recontact"]).message_id.strip("<>")
    if where == "customer name":
        assert str(events[uid]["SUMMARY"]).startswith("Recontact: Mallory END:VEVENT BEGIN:VEVENT")
