"""Admins invite admins and make password reset links: signed, 48 hours, single use, audited, CSRF everywhere."""
# ruff: noqa: F811  (the admin fixtures are imported from test_admin and named as test parameters)

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from service.models import Admin
from service.team.admins import INVITE, create_admin, password_link_token
from service.tokens import Signer
from tests.integration.test_admin import (  # noqa: F401
    ADMIN,
    _fresh_throttles,
    admin,
    audit_actions,
    csrf_token,
    logged_in,
    login,
)

NEWCOMER, NEW_PASSWORD = "grace@acme.example", "a fresh long password"
_LINK = re.compile(r'id="link-url" type="text" readonly value="([^"]+)"')


def _link_path(page) -> str:
    """The path of the link a page shows (the page shows it in full, with the configured base URL)."""
    assert page.status_code == 200, page.text[:500]
    return urlsplit(unescape(_LINK.search(page.text).group(1))).path


def invite(client, email: str = NEWCOMER) -> str:
    return _link_path(client.post("/admin/admins", data={"csrf_token": csrf_token(client, "/admin/admins"),
                                                        "email": email}))


def reset_link(client, engine, email: str) -> str:
    with Session(engine) as session:
        admin_id = session.exec(select(Admin).where(Admin.email == email)).one().id
    return _link_path(client.post(f"/admin/admins/{admin_id}/reset",
                                  data={"csrf_token": csrf_token(client, "/admin/admins")}))


def use_link(client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    # The token from the login form: Flask-WTF's token belongs to the session, and a refused link shows no form.
    return client.post(path, data={"csrf_token": csrf_token(client), "password": password,
                                   "confirm": password if confirm is None else confirm})


def test_the_admins_page_is_in_the_menu_and_lists_the_admins(logged_in):
    home = logged_in.get("/admin/").text
    assert 'href="/admin/admins"' in home
    page = logged_in.get("/admin/admins")
    assert page.status_code == 200 and ADMIN in page.text and "Invite an admin" in page.text


def test_invite_then_set_a_password_then_log_in(app, logged_in, engine):
    path = invite(logged_in)
    assert path.startswith("/admin/password/invite/")
    with Session(engine) as session:
        pending = session.exec(select(Admin).where(Admin.email == NEWCOMER)).one()
        assert pending.password_hash == "" and pending.active
    newcomer = app.test_client()
    assert login(newcomer, NEWCOMER, "any password at all").status_code == 401  # no password yet: no way in
    page = newcomer.get(path)
    assert page.status_code == 200 and NEWCOMER in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    done = use_link(newcomer, path)
    assert done.status_code == 302 and done.headers["Location"] == "/admin/login"
    assert "Your password is set" in newcomer.get("/admin/login").text
    assert login(newcomer, NEWCOMER, NEW_PASSWORD).status_code == 302
    assert newcomer.get("/admin/").status_code == 200
    assert audit_actions(engine) == ["login", "admin.invite", "login.failed", "admin.invite.used", "login"]


def test_a_used_invitation_is_refused_with_a_clear_page(app, logged_in):
    path = invite(logged_in)
    assert use_link(app.test_client(), path).status_code == 302
    again = app.test_client().get(path)
    assert again.status_code == 410 and "Link already used" in again.text and "Ask an admin for a new link" in again.text
    assert use_link(app.test_client(), path, "yet another password").status_code == 410


def test_an_admin_with_a_password_is_not_invited_again(logged_in, engine):
    response = logged_in.post("/admin/admins", data={"csrf_token": csrf_token(logged_in, "/admin/admins"),
                                                     "email": ADMIN})
    assert response.status_code == 422 and "send them a password reset link instead" in response.text
    assert 'id="link-url"' not in response.text
    assert audit_actions(engine) == ["login"]


def test_a_bad_address_is_refused_next_to_the_field(logged_in):
    response = logged_in.post("/admin/admins", data={"csrf_token": csrf_token(logged_in, "/admin/admins"),
                                                     "email": "Grace <grace@acme.example>"})
    assert response.status_code == 422 and "Enter one email address" in response.text


def test_a_reset_sets_a_new_password_and_ends_the_old_sessions(app, logged_in, engine):
    create_admin(engine, NEWCOMER, "the old long password")
    theirs = app.test_client()
    assert login(theirs, NEWCOMER, "the old long password").status_code == 302
    path = reset_link(logged_in, engine, NEWCOMER)
    assert path.startswith("/admin/password/reset/")
    assert theirs.get("/admin/").status_code == 200  # making the link changes nothing yet
    assert use_link(app.test_client(), path).status_code == 302
    assert theirs.get("/admin/").status_code == 302  # the old session is over
    assert login(app.test_client(), NEWCOMER, "the old long password").status_code == 401
    assert login(app.test_client(), NEWCOMER, NEW_PASSWORD).status_code == 302
    assert app.test_client().get(path).status_code == 410  # and the link is spent
    assert audit_actions(engine)[-4:] == ["admin.reset", "admin.reset.used", "login.failed", "login"]


def test_a_reset_for_an_admin_who_never_set_a_password_is_a_new_invitation(logged_in, engine):
    invite(logged_in)
    assert reset_link(logged_in, engine, NEWCOMER).startswith("/admin/password/invite/")


def test_a_reset_for_nobody_is_404(logged_in):
    response = logged_in.post("/admin/admins/999/reset", data={"csrf_token": csrf_token(logged_in, "/admin/admins")})
    assert response.status_code == 404


def test_an_expired_link_is_refused_with_a_clear_page(app, logged_in, engine, monkeypatch):
    invite(logged_in)
    with Session(engine) as session:
        pending = session.exec(select(Admin).where(Admin.email == NEWCOMER)).one()
    made_at = int(time.time()) - 48 * 3600 - 60
    monkeypatch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda _self: made_at)
    token = password_link_token(Signer(app.config["KEEPWARM"].settings), pending, INVITE)
    monkeypatch.undo()
    page = app.test_client().get(f"/admin/password/invite/{token}")
    assert page.status_code == 410 and "Link expired" in page.text and "48 hours" in page.text
    assert 'name="password"' not in page.text


@pytest.mark.parametrize("tamper", ["forged", "other kind", "other secret"])
def test_a_forged_link_is_refused_with_a_clear_page(app, logged_in, settings, tamper):
    path = invite(logged_in)
    token = path.rsplit("/", 1)[1]
    if tamper == "forged":
        path = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    elif tamper == "other kind":  # an invitation token on the reset page: each purpose signs with its own salt
        path = f"/admin/password/reset/{token}"
    else:
        stranger = Signer(settings.with_overrides(secret_key="another keepwarm's secret key, long enough"))
        path = f"/admin/password/invite/{stranger.make(INVITE, {'admin': 2, 'email': NEWCOMER, 'version': 0})}"
    page = app.test_client().get(path)
    assert page.status_code == 400 and "Link not valid" in page.text and 'name="password"' not in page.text
    assert use_link(app.test_client(), path).status_code == 400


def test_the_password_form_needs_csrf_and_a_good_password(app, logged_in, engine):
    path = invite(logged_in)
    visitor = app.test_client()
    assert visitor.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 400
    short = use_link(visitor, path, "short")
    assert short.status_code == 422 and "at least 10 characters" in short.text
    different = use_link(visitor, path, NEW_PASSWORD, confirm="something else entirely")
    assert different.status_code == 422 and "not the same" in different.text
    with Session(engine) as session:
        assert session.exec(select(Admin).where(Admin.email == NEWCOMER)).one().password_hash == ""
    assert "admin.invite.used" not in audit_actions(engine)


def test_inviting_and_resetting_need_a_login(client, admin):
    assert client.get("/admin/admins").status_code == 302
    token = csrf_token(client)
    assert client.post("/admin/admins", data={"csrf_token": token, "email": NEWCOMER}).status_code == 302
    assert client.post(f"/admin/admins/{admin.id}/reset", data={"csrf_token": token}).status_code == 302
