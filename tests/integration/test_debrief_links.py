"""/debrief/<token> over HTTP: every way a link can fail, CSRF, the form, saving, editing, the preview."""

from __future__ import annotations

import re
import time as time_module
from datetime import UTC, date, datetime, timedelta

import pytest
from rq.job import Job
from sqlmodel import Session, select

from service import create_app
from service.context import Services
from service.intake.store import store_raw
from service.models import Debrief, OutboundEmail, Outcome, Rep
from service.outbox.schedule import job_id
from service.outbox.template_context import debrief_url
from service.pipeline.process import process_message
from service.tokens import Signer
from tests.mail import recap

INTERNAL = ("Hi Jane,\n\nthanks for your time today. I'm afraid our demo did not convince you, and that's on me."
            "\n\nTom\n")


@pytest.fixture
def outcome(engine, settings, reps) -> Outcome:
    """A lost meeting read from a real recap: cause on our side, so a debrief reminder is planned."""
    with Session(engine) as session:
        row = store_raw(session, recap(1, body=INTERNAL, date=datetime.now(UTC) - timedelta(hours=1)), mailbox="t")
        session.commit()
        inbound_id = row.id
    process_message(Services.with_engine(settings, engine), inbound_id)
    with Session(engine) as session:
        return session.exec(select(Outcome)).one()


def _path(url: str) -> str:
    return url.removeprefix("http://keepwarm.test")


def _link(settings, outcome: Outcome, engine) -> str:
    with Session(engine) as session:
        return _path(debrief_url(Signer(settings), outcome, session.get(Rep, outcome.rep_id)))


def _csrf(page) -> str:
    return re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1).decode()


def _answers(csrf: str, **changes) -> dict:
    base = {"csrf_token": csrf, "outcome": "lost", "ours": ["unconvinced", "needs"], "theirs": ["timing"],
            "decision_makers-0-name": "Maria Rossi", "decision_makers-0-role": "CFO",
            "decision_makers-1-name": "", "decision_makers-1-role": "",
            "lesson": "Show the ROI figures before the demo", "plan": "recontact_on_date",
            "recontact_on": (date.today() + timedelta(days=60)).isoformat(),
            "personal_line": "I'll bring the figures we discussed.", "submit": "Save debrief"}
    return base | changes


def _rows(engine, outcome, kind) -> list[OutboundEmail]:
    with Session(engine) as session:
        return list(session.exec(select(OutboundEmail).where(OutboundEmail.outcome_id == outcome.id,
                                                             OutboundEmail.kind == kind)))


def _debrief(engine) -> Debrief | None:
    with Session(engine) as session:
        return session.exec(select(Debrief)).first()


def _later(monkeypatch, days: float) -> None:
    """The clock `days` ahead, as itsdangerous reads it."""
    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + days * 86400)


def _clear_page(response, status: int, words: bytes) -> None:
    assert response.status_code == status and words in response.data
    assert b"Traceback" not in response.data and b"<h1>" in response.data


# ---------------------------------------------------------------------------------------------------- link failures


def test_an_expired_link_says_so_and_what_to_do(client, settings, engine, outcome, monkeypatch):
    link = _link(settings, outcome, engine)
    _later(monkeypatch, settings.debrief_link_days + 1)
    response = client.get(link)
    _clear_page(response, 410, b"has expired")
    assert b"cancel and postpone links" in response.data


def test_the_lifetime_is_the_setting(app, client, settings, engine, outcome, monkeypatch):
    app.config["KEEPWARM"].settings = settings.with_overrides(debrief_link_days=2)
    link = _link(settings, outcome, engine)
    _later(monkeypatch, 1.5)
    assert client.get(link).status_code == 200
    _later(monkeypatch, 1)
    _clear_page(client.get(link), 410, b"2 days")


@pytest.mark.parametrize("damage", [lambda t: t[:-3] + ("aaa" if not t.endswith("aaa") else "bbb"),
                                    lambda t: "x" + t, lambda t: "not-a-token"])
def test_a_tampered_link_is_refused_with_a_clear_400(client, settings, engine, outcome, damage):
    token = _link(settings, outcome, engine).rsplit("/", 1)[1]
    _clear_page(client.get(f"/debrief/{damage(token)}"), 400, b"not valid")


def test_a_token_made_for_another_page_is_refused(client, settings, outcome):
    token = Signer(settings).make("manage", {"outcome": outcome.id, "rep": outcome.rep_id})
    _clear_page(client.get(f"/debrief/{token}"), 400, b"not valid")
    unsubscribe = Signer(settings).make("unsubscribe", {"email": "jane@globex.example"})
    _clear_page(client.get(f"/debrief/{unsubscribe}"), 400, b"not valid")


def test_an_unknown_outcome_is_a_404_that_says_there_is_nothing_to_fill(client, settings, outcome):
    token = Signer(settings).make("debrief", {"outcome": outcome.id + 1000, "rep": outcome.rep_id})
    _clear_page(client.get(f"/debrief/{token}"), 404, b"no longer here")


def test_another_reps_link_is_refused(client, settings, engine, outcome):
    with Session(engine) as session:
        anna = session.exec(select(Rep).where(Rep.email == "anna.bianchi@acme.example")).one()
    token = Signer(settings).make("debrief", {"outcome": outcome.id, "rep": anna.id})
    _clear_page(client.get(f"/debrief/{token}"), 403, b"not yours")


def test_a_deactivated_rep_can_no_longer_use_the_link(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    with Session(engine) as session:
        session.get(Rep, outcome.rep_id).active = False
        session.commit()
    _clear_page(client.get(link), 403, b"not yours")


def test_posting_to_a_bad_link_changes_nothing(client, settings, engine, outcome, monkeypatch):
    link = _link(settings, outcome, engine)
    _later(monkeypatch, settings.debrief_link_days + 1)
    csrf = _csrf(client.get(_link(settings, outcome, engine)))  # a fresh link's page, for a valid session
    _clear_page(client.post(link, data=_answers(csrf)), 410, b"has expired")
    _clear_page(client.post("/debrief/garbage", data=_answers(csrf)), 400, b"not valid")
    assert _debrief(engine) is None


# ---------------------------------------------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_is_refused_and_saves_nothing(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    client.get(link)
    response = client.post(link, data=_answers(""))
    _clear_page(response, 400, b"not saved")
    other = create_app(settings).test_client()  # another browser: a token from this session is worthless there
    _clear_page(other.post(link, data=_answers(_csrf(client.get(link)))), 400, b"not saved")
    assert _debrief(engine) is None
    assert {r.status for r in _rows(engine, outcome, "debrief_reminder")} == {"scheduled"}


# ---------------------------------------------------------------------------------------------------- the form


def test_the_form_is_prefilled_from_the_reading_and_labels_every_field(client, settings, engine, outcome):
    page = client.get(_link(settings, outcome, engine))
    assert page.status_code == 200
    html = page.data.decode()
    assert re.search(r'checked id="outcome-0"[^>]*value="lost"', html)
    assert re.search(r'checked id="ours-0"[^>]*value="unconvinced"', html)
    assert re.search(r'checked id="plan-4"[^>]*value="no_recontact"', html)  # nothing planned yet: status quo
    fields = re.findall(r'<(?:input|textarea|select)[^>]*>', html)
    ids = {re.search(r' id="([^"]+)"', f).group(1) for f in fields if not re.search(r'type="(submit|hidden)"', f)}
    labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', html))
    assert ids and ids <= labelled, ids - labelled
    assert 'name="viewport"' in html
    assert "<script>" not in html  # the CSP allows scripts from 'self' only: the form's script is a file
    script = client.get(re.search(r'<script src="([^"]+)"', html).group(1))
    assert script.status_code == 200 and script.mimetype == "text/javascript" and b"preview" in script.data


def test_saving_changes_the_plan_at_once_and_records_the_time(client, settings, engine, outcome, redis):
    link = _link(settings, outcome, engine)
    before = datetime.now(UTC)
    response = client.post(link, data=_answers(_csrf(client.get(link))))
    assert response.status_code == 303 and response.headers["Location"].endswith("?saved=1")
    [recontact] = _rows(engine, outcome, "recontact")
    assert (recontact.status, recontact.variant) == ("scheduled", "timing")
    assert recontact.personal_line == "I'll bring the figures we discussed."
    assert Job.fetch(job_id(recontact.id), connection=redis).get_status() == "scheduled"
    [reminder] = _rows(engine, outcome, "debrief_reminder")
    assert (reminder.status, reminder.canceled_reason) == ("canceled", "debrief submitted")
    debrief = _debrief(engine)
    assert debrief.submitted_at >= before and debrief.plan == "recontact_on_date"
    assert debrief.answers["ours"] == ["unconvinced", "needs"] and debrief.lesson.startswith("Show the ROI")
    with Session(engine) as session:
        stored = session.get(Outcome, outcome.id)
    assert stored.debrief_submitted_at == debrief.submitted_at
    assert stored.decision_makers == [{"name": "Maria Rossi", "role": "CFO"}]


def test_after_saving_the_link_shows_the_answers_and_lets_the_rep_edit_them(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    client.post(link, data=_answers(_csrf(client.get(link))))
    shown = client.get(link + "?saved=1").data.decode()
    assert "your debrief is saved" in shown and "Show the ROI figures before the demo" in shown
    assert "Maria Rossi · CFO" in shown and "Recontact" in shown and "scheduled" in shown
    edit = client.get(link + "?edit=1")
    assert b'value="Show the ROI figures' not in edit.data and b"Show the ROI figures before the demo" in edit.data
    first = _debrief(engine)
    response = client.post(link, data=_answers(_csrf(edit), plan="no_recontact", lesson="Shorter demo"))
    assert response.status_code == 303
    debrief = _debrief(engine)
    assert debrief.id == first.id and debrief.submitted_at == first.submitted_at
    assert debrief.updated_at > first.updated_at and debrief.lesson == "Shorter demo"
    assert {r.status for r in _rows(engine, outcome, "recontact")} == {"canceled"}


def test_a_missing_or_past_date_is_explained_and_nothing_is_saved(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    csrf = _csrf(client.get(link))
    missing = client.post(link, data=_answers(csrf, recontact_on=""))
    assert missing.status_code == 422 and b"Pick the date for the recontact." in missing.data
    past = client.post(link, data=_answers(csrf, recontact_on="2020-01-01"))
    assert past.status_code == 422 and b"Pick today or a later date." in past.data
    junk = client.post(link, data=_answers(csrf, plan="call_them", ours=["bribery"]))
    assert junk.status_code == 422 and b"Traceback" not in junk.data
    assert _debrief(engine) is None and _rows(engine, outcome, "recontact") == []


def test_the_preview_button_and_the_live_preview_show_the_email_without_saving(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    csrf = _csrf(client.get(link))
    page = client.post(link, data=_answers(csrf, preview="Update preview") | {"submit": ""})
    assert page.status_code == 200 and b"Preview of the email" in page.data
    assert b"I&#39;ll bring the figures we discussed." in page.data and b"Dear Jane" in page.data
    fragment = client.post(f"{link}/preview", data=_answers(csrf, plan="meet_decision_makers"))
    assert fragment.status_code == 200 and b"Maria Rossi (CFO)" in fragment.data and b"<html" not in fragment.data
    assert b"Pick a date" in client.post(f"{link}/preview", data=_answers(csrf, recontact_on="")).data
    assert _debrief(engine) is None and _rows(engine, outcome, "recontact") == []


def test_a_saved_date_that_has_passed_can_stay_when_the_rep_edits_something_else(client, settings, engine, outcome):
    link = _link(settings, outcome, engine)
    client.post(link, data=_answers(_csrf(client.get(link))))
    with Session(engine) as session:  # time went by: the recontact date is now in the past
        debrief = session.exec(select(Debrief)).one()
        debrief.answers = {**debrief.answers, "recontact_on": "2020-01-06"}
        session.commit()
    edit = client.get(link + "?edit=1")
    assert b'value="2020-01-06"' in edit.data and b'min="' not in edit.data
    response = client.post(link, data=_answers(_csrf(edit), recontact_on="2020-01-06", lesson="Call before"))
    assert response.status_code == 303 and _debrief(engine).lesson == "Call before"
    assert [r.status for r in _rows(engine, outcome, "recontact")] == ["scheduled"]  # the plan did not move
