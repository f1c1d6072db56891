"""Template editing over HTTP and the sandbox: escapes, runaway loops and sizes are refused, nothing hangs."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlmodel import Session, select

from service.models import AuditEntry, Customer, EmailTemplate, Rep
from service.outbox.rows import new_outbound
from service.outbox.templates import (
    TemplateSource,
    check_source,
    default_source,
    render_email,
    render_isolated,
    render_source,
    sample_context,
)
from tests.integration.test_admin import ADMIN, _fresh_throttles, admin, csrf_token, logged_in  # noqa: F401

EDITOR = "/admin/templates/thank_you/lost/en"
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('__class__'))|attr('__mro__') }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{x.__class__.__mro__}'.format_map({'x': ''}) }}",
    "{{ '%s'|format(cycler.__init__.__globals__) }}",
    "{{ '%s'|format(''.__class__) }}",
    "{{ self.__init__.__globals__ }}",
    "{{ dict.mro() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ outcome.reasons.append('x') }}",
    "{{ customer.update({'name': 'x'}) }}",
]
BOMBS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ range(10**9)|list|length }}",
    "{{ 'x' * 10**9 }}",
    "{{ 'x'*100000*100000 }}",
    "{{ ('x' * 100000)|replace('x', 'x' * 100000) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{0:>{1}}'.format('x', 999999999) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'|indent(999999999) }}",
    "{{ [1]|batch(999999999, 'x')|list }}",
    "{{ [1]|slice(999999999)|list }}",
    "{{ 99999 ** 99999 }}",
    "{% for i in range(100000) %}xxx{% endfor %}",
]


def _sample():
    return sample_context("thank_you", "lost", "en")


@pytest.mark.parametrize("payload", ESCAPES)
def test_the_sandbox_refuses_every_escape(payload):
    problems = check_source(TemplateSource("Hi", payload, ""), [("the sample", _sample())])
    assert problems, payload
    with pytest.raises(Exception) as raised:  # also outside the child: the sandbox itself refuses
        render_source(TemplateSource("Hi", payload, ""), _sample())
    for leak in ("<class", "<function", "<module", "subclasses", "builtins"):
        assert leak not in str(problems[0]) and leak not in str(raised.value)


@pytest.mark.parametrize("payload", [pytest.param(BOMBS[0], marks=pytest.mark.slow), *BOMBS[1:]])  # 0: a 2 s timeout
def test_huge_loops_ranges_and_strings_are_refused_quickly(payload):
    started = time.monotonic()
    problems = check_source(TemplateSource("Hi", payload, ""), [("the sample", _sample())])
    assert problems, payload
    assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_runaway_render_is_killed_after_the_timeout_and_reported():
    started = time.monotonic()
    with pytest.raises(Exception, match="longer than 2 s"):
        render_isolated(TemplateSource("Hi", BOMBS[0], ""), _sample())
    assert 1.5 < time.monotonic() - started < 4


def test_the_shipped_defaults_pass_every_check():
    from service.web.admin.catalog import all_keys, default_version

    keys = all_keys()
    assert len(keys) == 22  # with rep_answer (en, it)
    for key in keys:
        contexts = [("full", sample_context(key.kind, key.variant, key.language)),
                    ("sparse", sample_context(key.kind, key.variant, key.language, sparse=True))]
        assert check_source(default_version(key).source, contexts) == [], key


@pytest.mark.slow
def test_the_web_process_answers_while_a_preview_spins(logged_in, app):
    token = csrf_token(logged_in, EDITOR)
    other = app.test_client()
    spinning = threading.Thread(target=lambda: logged_in.post(f"{EDITOR}/preview", data={
        "csrf_token": token, "subject": "Hi", "text": BOMBS[0], "html": "", "sample": "sample"}))
    spinning.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert other.get("/healthz").status_code in (200, 503)
    assert time.monotonic() - started < 1
    spinning.join(10)
    assert not spinning.is_alive()


def _form(token: str, text: str, subject: str = "Thank you, {{ customer.first_name }}", html: str = "") -> dict:
    return {"csrf_token": token, "subject": subject, "text": text, "html": html, "sample": "sample"}


def _versions(engine) -> list[EmailTemplate]:
    with Session(engine) as session:
        return list(session.exec(select(EmailTemplate).order_by(EmailTemplate.version)))


def _active_render(engine):
    with Session(engine) as session:
        return render_email(session, "thank_you", "lost", "en", _sample())


def test_the_list_shows_every_template_with_version_0(logged_in):
    page = logged_in.get("/admin/templates/")
    assert page.status_code == 200
    assert page.text.count("shipped default") == 22
    assert "Recontact · others to consult" in page.text and "Italian" in page.text


def test_the_editor_shows_the_default_as_version_0_and_every_placeholder(logged_in):
    page = logged_in.get(EDITOR)
    assert page.status_code == 200
    assert "In use: v0" in page.text and "Thank you for meeting me" in page.text
    for placeholder in ("customer.first_name", "rep.name", "meeting.date_text", "links.unsubscribe", "personal_line"):
        assert f'<td data-label="Placeholder">{placeholder}</td>' in page.text
    assert logged_in.get("/admin/templates/thank_you/nope/en").status_code == 404
    assert logged_in.get("/admin/templates/thank_you/lost/fr").status_code == 404


def test_the_preview_renders_both_parts_or_the_problems(logged_in):
    token = csrf_token(logged_in, EDITOR)
    good = logged_in.post(f"{EDITOR}/preview", data=_form(token, "Dear {{ customer.first_name }},\n",
                                                            html="<p>Hi {{ customer.name }} {{ '<b>' }}</p>"))
    assert good.status_code == 200
    assert "Thank you, Jane" in good.text and "Dear Jane," in good.text
    # Escaped twice: values in the email's HTML, then the whole email inside the sandboxed iframe's srcdoc.
    assert 'srcdoc="&lt;p&gt;Hi Jane Doe &amp;lt;b&amp;gt;&lt;/p&gt;"' in good.text and "<iframe sandbox" in good.text
    bad = logged_in.post(f"{EDITOR}/preview", data=_form(token, "Dear {{ customer.first_name }},\n\n{% if %}"))
    assert "line 3" in bad.text and "syntax error" in bad.text


def test_the_preview_can_use_a_real_email(logged_in, engine, settings):
    with Session(engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == "tom.baker@acme.example")).one()
        customer = Customer(email="ola@nordic.example", name="Ola Nordmann")
        session.add(customer)
        session.flush()
        row = new_outbound(settings, kind="thank_you", variant="lost", rep=rep, to_address=customer.email,
                           to_name=customer.name, due_at=datetime.now(UTC) + timedelta(days=1), outcome_id=None,
                           language="en", customer_id=customer.id)
        session.add(row)
        session.commit()
        row_id = row.id
    page = logged_in.get(EDITOR)
    assert f'value="{row_id}"' in page.text
    token = csrf_token(logged_in, EDITOR)
    preview = logged_in.post(f"{EDITOR}/preview", data={**_form(token, "To {{ customer.name }}\n"),
                                                        "sample": str(row_id)})
    assert "To Ola Nordmann" in preview.text and f"email #{row_id}" in preview.text


def test_a_good_save_is_a_new_active_version_the_sender_uses(logged_in, engine):
    token = csrf_token(logged_in, EDITOR)
    response = logged_in.post(EDITOR, data=_form(token, "Dear {{ customer.first_name }}, thank you.\n"))
    assert response.status_code == 302
    [saved] = _versions(engine)
    assert (saved.version, saved.active, saved.author, saved.last_error) == (1, True, ADMIN, None)
    rendered = _active_render(engine)
    assert rendered.version == 1 and rendered.text == "Dear Jane, thank you.\n"
    assert "In use: v1" in logged_in.get(EDITOR).text


@pytest.mark.parametrize(("text", "expected"), [
    ("Dear {{ customer.first_name }},\n\n{% if %}\n", "line 3"),
    ("Dear {{ customer.nmae }}\n", "customer.nmae"),
    ("Dear {{ custmer }}\n", "unknown placeholder 'custmer'"),
    ("{% if outcome.outcome == 'x' %}{{ nobody }}{% endif %}\n", "unknown placeholder 'nobody'"),
    ("{{ customer.first_name.upper() }}\n", "empty optional values"),
    ("{{ ''.__class__ }}\n", "unsafe"),
    pytest.param(BOMBS[0], "longer than 2 s", marks=pytest.mark.slow),
    ("{% for i in range(100000) %}xxx{% endfor %}", "limit 200000"),
])
def test_a_bad_save_is_kept_but_not_activated_and_says_why(logged_in, engine, text, expected):
    token = csrf_token(logged_in, EDITOR)
    response = logged_in.post(EDITOR, data=_form(token, text))
    assert response.status_code == 422
    assert expected in unescape(response.text) and "not active" in response.text
    [kept] = _versions(engine)
    assert kept.active is False and expected in kept.last_error
    assert _active_render(engine).version is None  # the sender still uses the default
    with Session(engine) as session:
        assert session.exec(select(AuditEntry.action)).all()[-1] == "template.save.rejected"


def test_a_too_long_part_is_refused_by_the_form(logged_in, engine):
    token = csrf_token(logged_in, EDITOR)
    response = logged_in.post(EDITOR, data=_form(token, "x" * 100_001))
    assert response.status_code == 400 and _versions(engine) == []


def test_history_diff_and_revert(logged_in, engine):
    token = csrf_token(logged_in, EDITOR)
    logged_in.post(EDITOR, data=_form(token, "First line\nSecond line\n"))
    logged_in.post(EDITOR, data=_form(token, "First line\nSecond line changed\n"))
    diff = logged_in.get(f"{EDITOR}/diff?a=1&b=2")
    assert diff.status_code == 200
    assert '<div class="del">' in diff.text and "-Second line</div>" in diff.text.replace("removed: </span>", "")
    assert "+Second line changed" in diff.text.replace("added: </span>", "").replace('<span class="visually-hidden">', "")
    assert "Changes from v1 to v2" in logged_in.get(f"{EDITOR}/diff").text  # newest against the one before
    revert = logged_in.post(f"{EDITOR}/revert/0", data={"csrf_token": token})
    assert revert.status_code == 302
    versions = _versions(engine)
    assert [v.version for v in versions] == [1, 2, 3]
    default = default_source("thank_you", "lost", "en")
    assert (versions[-1].text, versions[-1].active) == (default.text, True)
    assert _active_render(engine).version == 3
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "template.revert")).one()
    assert entry.detail == {"version": 3, "copied": 0} and entry.target == "thank_you/lost/en"
    assert logged_in.post(f"{EDITOR}/revert/99", data={"csrf_token": token}).status_code == 404


def test_send_a_test_to_me_goes_over_smtp_to_the_admin(logged_in, smtp, engine):
    token = csrf_token(logged_in, EDITOR)
    response = logged_in.post(f"{EDITOR}/test", data=_form(token, "Dear {{ customer.first_name }}, test.\n",
                                                            html="<p>Dear {{ customer.first_name }}</p>"))
    assert response.status_code == 200 and f"sent to {ADMIN}" in response.text
    [caught] = smtp.caught
    assert caught.recipients == [ADMIN]
    message = caught.message
    assert message["Subject"] == "[Keepwarm test] Thank you, Jane"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Dear Jane, test.\n"
    assert "<p>Dear Jane</p>" in message.get_body(("html",)).get_content()
    assert _versions(engine) == []  # a test saves nothing
    broken = logged_in.post(f"{EDITOR}/test", data=_form(token, "{% if %}"))
    assert broken.status_code == 422 and len(smtp.caught) == 1
