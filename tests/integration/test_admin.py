"""Admin login, sessions and CSRF over HTTP, for every /admin/ rule in the url map (colleagues' pages included)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from redis import Redis
from sqlmodel import Session, select
from werkzeug.routing import BuildError

from service import context, create_app
from service.models import Admin, AuditEntry
from service.settings import load_settings
from service.team.admins import create_admin
from service.web.admin.blueprint import PUBLIC
from service.web.admin.throttle import LOGIN_TRIES_PER_ADDRESS, LOGIN_TRIES_PER_IP

PASSWORD = "correct horse battery"
ADMIN = "ada@acme.example"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Sample values for the url map's arguments; `change` tries each until the rule accepts one.
_ARGUMENTS = {"kind": ["thank_you"], "variant": ["lost"], "language": ["en"], "change": ["cancel", "disable"],
              "name": ["reasons"], "number": [1]}


FREE_FAILURES, IP_TRIES = 5, 20  # what the README promises: 5 wrong passwords an address, 20 refused tries an IP
_COUNTS = "LIMITS:LIMITER/keepwarm-login/*"  # the throttle's keys in Redis


@pytest.fixture(autouse=True)
def _fresh_throttles(request):
    """Failed logins are counted in Redis, which outlives a test: each test starts with none of the others'."""
    if "redis_server" in request.fixturenames:
        connection = Redis.from_url(request.getfixturevalue("redis_server").url)
        for key in connection.scan_iter(_COUNTS):
            connection.delete(key)
        connection.close()


@pytest.fixture
def admin(engine) -> Admin:
    return create_admin(engine, ADMIN, PASSWORD)


def csrf_token(client, path: str = "/admin/login") -> str:
    """The token of a form on `path` (bound to this client's session)."""
    page = client.get(path)
    return _TOKEN.search(page.text).group(1)


def login(client, email: str = ADMIN, password: str = PASSWORD):
    return client.post("/admin/login", data={"csrf_token": csrf_token(client), "email": email, "password": password})


@pytest.fixture
def logged_in(client, admin):
    assert login(client).status_code == 302
    return client


def audit_actions(engine) -> list[str]:
    with Session(engine) as session:
        return [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]


def _admin_rules() -> list[tuple[str, str, str]]:
    """(rule, method, url) for every /admin/ rule but the login form, built from a throwaway app."""
    saved = context._current
    try:
        app = create_app(load_settings({"secret_key": "collect", "database_url": "sqlite://"}, environ={},
                                       env_file=None))
    finally:
        context._current = saved
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.endpoint not in PUBLIC:
            url = _build(rule)
            found += [(rule.rule, method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def _build(rule) -> str:
    for change in _ARGUMENTS["change"]:
        values = {name: _ARGUMENTS.get(name, [1])[0] for name in rule.arguments}
        if "change" in values:
            values["change"] = change
        try:
            return rule.build(values)[1]
        except (BuildError, ValueError):
            continue
    raise AssertionError(f"cannot build {rule.rule}")


RULES = _admin_rules()
GETS = [r for r in RULES if r[1] == "GET"]
POSTS = [r for r in RULES if r[1] == "POST"]


def test_only_the_login_form_and_the_password_link_page_are_open_to_anyone():
    assert PUBLIC == {"admin.login", "admin.set_password"}


def test_the_url_map_has_every_admin_area():
    paths = {rule for rule, _method, _url in RULES}
    for area in ("/admin/", "/admin/templates/", "/admin/settings", "/admin/reps", "/admin/suppression",
                 "/admin/inbox", "/admin/outbox", "/admin/audit", "/admin/queues", "/admin/logout",
                 "/admin/insights/", "/admin/admins"):
        assert area in paths


@pytest.mark.parametrize(("rule", "method", "url"), GETS, ids=[r[0] for r in GETS])
def test_every_admin_page_sends_an_anonymous_visitor_to_the_login_form(client, rule, method, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


@pytest.mark.parametrize(("rule", "method", "url"), POSTS, ids=[r[0] for r in POSTS])
def test_every_admin_post_needs_a_login_even_with_a_valid_csrf_token(client, rule, method, url):
    response = client.post(url, data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


@pytest.mark.parametrize(("rule", "method", "url"), POSTS, ids=[r[0] for r in POSTS])
def test_every_admin_post_without_a_csrf_token_gets_400(logged_in, engine, rule, method, url):
    before = audit_actions(engine)
    assert logged_in.post(url, data={}).status_code == 400
    assert logged_in.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert audit_actions(engine) == before  # nothing happened


def test_a_live_preview_after_the_session_ended_sends_htmx_to_the_login_form(client):
    response = client.post("/admin/templates/thank_you/lost/en/preview", headers={"HX-Request": "true"},
                           data={"csrf_token": csrf_token(client)})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/admin/login"


def test_the_login_form_itself_needs_csrf(client, admin):
    response = client.post("/admin/login", data={"email": ADMIN, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_login_then_pages_then_logout(client, admin, engine):
    assert client.get("/admin/").headers["Location"] == "/admin/login?next=%2Fadmin%2F"
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    home = client.get("/admin/")
    assert home.status_code == 200 and ADMIN in home.text
    logout = client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert logout.status_code == 302 and logout.headers["Location"] == "/admin/login"
    assert client.get("/admin/").status_code == 302
    assert audit_actions(engine) == ["login", "logout"]


def test_logout_is_a_post_only(logged_in):
    assert logged_in.get("/admin/logout").status_code == 405
    assert logged_in.get("/admin/").status_code == 200


def test_passwords_are_stored_hashed(admin, engine):
    with Session(engine) as session:
        stored = session.exec(select(Admin)).one().password_hash
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(client, admin, engine):
    wrong = login(client, password="not the password")
    unknown = login(client, email="nobody@acme.example")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or the password is wrong." in wrong.text and "The email or the password is wrong." in unknown.text
    with Session(engine) as session:
        assert session.exec(select(Admin)).one().failed_logins == 1
    assert audit_actions(engine) == ["login.failed", "login.failed"]


def test_the_limits_are_the_ones_the_readme_promises():
    assert LOGIN_TRIES_PER_ADDRESS == f"{FREE_FAILURES} per minute"
    assert LOGIN_TRIES_PER_IP == f"{IP_TRIES} per 15 minutes"


def _refusal(response) -> int:
    """The wait a 429 asks for, checked to be the login form saying the same in words."""
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    word = "second" if wait == 1 else "seconds"
    assert f"Too many failed attempts. Wait {wait} {word}, then try again." in response.text
    assert 'name="password"' in response.text  # the login form again, in the admin's style
    return wait


@pytest.mark.slow
def test_failures_in_a_row_make_the_address_wait_but_never_lock_it(app, client, admin, engine):
    app.config["LOGIN_TRIES_PER_ADDRESS"] = "2 per 2 seconds"  # a short window, read at each request
    for _ in range(2):
        assert login(client, password="wrong password").status_code == 401
    wait = _refusal(login(client))  # the right password, but too soon after the failures
    assert 1 <= wait <= 2
    with Session(engine) as session:
        assert session.exec(select(Admin)).one().failed_logins == 2
    time.sleep(wait)  # the oldest failure leaves the window: one try again
    assert login(client).status_code == 302
    with Session(engine) as session:
        assert session.exec(select(Admin)).one().failed_logins == 0


def _browser(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


@pytest.mark.slow
def test_a_stranger_cannot_lock_an_admin_out(app, admin):
    app.config["LOGIN_TRIES_PER_ADDRESS"] = f"{FREE_FAILURES} per 2 seconds"
    stranger = _browser(app, "203.0.113.7")
    answers = [login(stranger, password="guess").status_code for _ in range(40)]  # hammering the admin's address
    assert answers[:FREE_FAILURES] == [401] * FREE_FAILURES and answers[-1] == 429
    assert login(stranger).status_code == 429  # the stranger's IP has used up its tries, even with the password
    admin_browser = _browser(app, "198.51.100.2")
    waiting = login(admin_browser)
    if waiting.status_code != 302:
        time.sleep(_refusal(waiting))  # at most the address's window
        # Tries refused for the stranger's IP never count against the address, however many come meanwhile.
        assert {login(stranger, password="guess").status_code for _ in range(10)} == {429}
        assert login(admin_browser).status_code == 302


def test_an_unknown_address_waits_the_same_way(client, admin):
    for _ in range(FREE_FAILURES):
        assert login(client, email="mallory@acme.example", password="guess").status_code == 401
    unknown = login(client, email="mallory@acme.example", password="guess")
    for _ in range(FREE_FAILURES):
        assert login(client, password="guess").status_code == 401
    known = login(client, password="guess")
    assert 1 <= _refusal(unknown) <= 60 and 1 <= _refusal(known) <= 60  # the same answer, a minute at most


@pytest.mark.slow
def test_one_ip_trying_many_addresses_is_slowed_down(client, admin):
    for n in range(IP_TRIES):
        assert login(client, email=f"guess{n}@acme.example", password="guess").status_code == 401
    _refusal(login(client))  # a real admin from the same IP must wait too


def test_successful_logins_and_broken_forms_are_not_counted(app, client, admin):
    app.config.update(LOGIN_TRIES_PER_IP="2 per minute", LOGIN_TRIES_PER_ADDRESS="2 per minute")
    for _ in range(3):
        assert login(client).status_code == 302
        client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
        assert client.post("/admin/login", data={"csrf_token": csrf_token(client), "email": ADMIN}).status_code == 400
    assert client.get("/admin/login").status_code == 200  # the form itself is never refused


def test_two_web_processes_share_the_count(settings, engine, reps, redis, admin):
    """Two apps (two gunicorn workers) on one Redis: the tries one worker counted, the other refuses."""
    first, second = create_app(settings), create_app(settings)
    assert not first.extensions["limiter"] & second.extensions["limiter"]  # each its own limiter, as in a process
    for app in (first, second):
        app.config.update(LOGIN_TRIES_PER_IP="6 per minute")
    one, other = first.test_client(), second.test_client()
    for _ in range(3):
        assert login(one, password="guess").status_code == 401
    for _ in range(2):
        assert login(other, password="guess").status_code == 401
    _refusal(login(other))  # the fifth failure came through the other worker: the address waits in both
    _refusal(login(one))
    _refusal(login(one, email="grace@acme.example"))  # and so does the IP (6 refused tries), for any address
    assert list(redis.scan_iter(_COUNTS))  # counted in Redis, not in either process


def test_the_session_cookie_is_httponly_and_lax_and_secure_only_over_https(client, admin, settings):
    cookie = login(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = create_app(settings.with_overrides(base_url="https://keepwarm.example")).test_client()
    assert "Secure" in login(https).headers["Set-Cookie"]


def test_next_only_leads_to_admin_pages_on_this_site(client, admin):
    token = csrf_token(client)
    for target in ("https://evil.example/admin/", "//evil.example/admin/", "/\\evil.example", "/unsubscribe/x"):
        response = client.post(f"/admin/login?next={target}",
                               data={"csrf_token": token, "email": ADMIN, "password": PASSWORD})
        assert response.headers["Location"] == "/admin/"
        client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
        token = csrf_token(client)
    response = client.post("/admin/login?next=/admin/outbox", data={"csrf_token": token, "email": ADMIN,
                                                                     "password": PASSWORD})
    assert response.headers["Location"] == "/admin/outbox"


def test_the_session_lives_12_hours_and_no_remember_cookie_outlives_it(client, admin, app):
    response = login(client)
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("session=")
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookies[0]).group(1))
    assert timedelta(hours=11, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=12)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == app.config["REMEMBER_COOKIE_DURATION"] == timedelta(hours=12)


def _copy_of_session(app, client):
    """Another browser holding a copy of `client`'s session cookie (stolen, or kept from before)."""
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def test_a_cookie_copied_before_logout_fails_after_it(app, logged_in):
    copy = _copy_of_session(app, logged_in)
    other_login = app.test_client()
    assert login(other_login).status_code == 302
    assert copy.get("/admin/").status_code == 200
    logged_in.post("/admin/logout", data={"csrf_token": csrf_token(logged_in, "/admin/")})
    assert copy.get("/admin/").status_code == 302  # the copy is out…
    assert other_login.get("/admin/").status_code == 302  # …and so is every other session of that admin
    assert login(logged_in).status_code == 302 and logged_in.get("/admin/").status_code == 200


def test_a_cookie_copied_before_a_password_change_fails_after_it(app, logged_in, engine):
    copy = _copy_of_session(app, logged_in)
    create_admin(engine, ADMIN, "a brand new password")
    assert copy.get("/admin/").status_code == 302


def test_a_new_password_ends_the_other_sessions_and_a_disabled_admin_is_out(logged_in, engine):
    create_admin(engine, ADMIN, "a brand new password")
    assert logged_in.get("/admin/").status_code == 302
    assert login(logged_in, password="a brand new password").status_code == 302
    with Session(engine) as session:
        session.exec(select(Admin)).one().active = False
        session.commit()
    assert logged_in.get("/admin/").status_code == 302


def test_admin_pages_send_strict_headers(logged_in):
    response = logged_in.get("/admin/templates/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.slow
def test_keepwarm_admins_create_reads_the_password_from_stdin(settings, engine, client):
    env = {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url, "KEEPWARM_SECRET_KEY": "test",
           "KEEPWARM_INSTANCE_DIR": str(settings.instance_dir)}

    def run(*args, stdin):
        # The console script, as a user runs it (`python -m service.cli` stops before groups defined late).
        keepwarm = str(Path(sys.executable).parent / "keepwarm")
        return subprocess.run([keepwarm, "admins", "create", *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=60, cwd=settings.instance_dir)

    done = run("Grace@Acme.example", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert "grace@acme.example" in done.stdout
    assert login(client, email="grace@acme.example").status_code == 302
    short = run("eve@acme.example", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "at least 10 characters" in short.stderr
    prompted = run("joe@acme.example", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.returncode == 0, prompted.stderr


@pytest.mark.slow
def test_behind_a_proxy_the_throttle_counts_each_visitors_own_ip(settings, engine, reps, redis, admin):
    app = create_app(settings.with_overrides(proxy_hops=1))
    stranger, colleague = app.test_client(), app.test_client()  # both reach the app through the same proxy
    stranger.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.2"
    for n in range(IP_TRIES):
        login(stranger, email=f"guess{n}@acme.example", password="guess")
    assert login(stranger).status_code == 429
    assert login(colleague).status_code == 302
