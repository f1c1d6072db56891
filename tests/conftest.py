"""Fixtures: private real servers (Redis, Dovecot, SMTP) started once per session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from redis import Redis
from sqlmodel import Session
from werkzeug.security import generate_password_hash

from service import context
from service.db import make_engine, upgrade
from service.models import PolicyRecord
from service.planning.policy import Policy
from service.run.devstack import DovecotServer, MailCatcher, RedisServer
from service.run.devstack.servers import PostgresServer, dovecot_binary, postgres_bin_dir
from service.settings import Settings, load_settings
from service.team import admins
from service.team.reps import save_rep

TESTS = Path(__file__).parent
INTAKE = "followup@acme.example"
REPS = [
    ("anna.bianchi@acme.example", "Anna Bianchi", "Europe/Rome", ("anna@acme.example",)),
    ("tom.baker@acme.example", "Tom Baker", "Europe/London", ()),
    ("luca.moretti@acme.example", "Luca Moretti", "Europe/Rome", ()),
    ("sarah.chen@acme.example", "Sarah Chen", "America/New_York", ()),
]
_users = itertools.count(1)
_databases = itertools.count(1)
# `make test` runs the suite twice: on SQLite, then with KEEPWARM_TEST_DATABASE=postgresql on a private cluster.
DATABASE = os.environ.get("KEEPWARM_TEST_DATABASE", "sqlite")
_MAILBOXES = 400
# A test whose fixtures include one of these reaches the test database: marked `db`, so the PostgreSQL pass of
# `make test` (`-m db`) runs it. `settings`, `engine`, `reps`, `app`, `client` all come through `database_url`.
DATABASE_FIXTURES = {"database_url", "migrated_template", "postgres"}


def pytest_collection_modifyitems(items):
    """Markers from what a test uses: `db` (see DATABASE_FIXTURES) and `browser` (drives Chromium)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & DATABASE_FIXTURES:
            item.add_marker(pytest.mark.db)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashes():
    """Admins' passwords hashed with one round of PBKDF2 (the check reads the method from the stored hash), as
    Django's docs advise for tests: scrypt's 0.14 s per hash and per login, over the hundred-odd tests with an
    admin, was a third of `make check`. The CLI's processes and the unknown-address dummy hash keep scrypt."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(admins, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1"))
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis(redis_server) -> Redis:
    connection = Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory):
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (make install as root installs dovecot-imapd)")
    # Users are all created up front: Dovecot notices a changed passwd-file only by its mtime (whole seconds).
    users = {INTAKE: "keepwarm", **{f"intake{n}@acme.example": "secret" for n in range(1, _MAILBOXES + 1)}}
    # Not under pytest's temp root: another pytest run resets that folder to 0700, and Dovecot's mail processes
    # (nobody, when we are root) must be able to walk down to the mail.
    folder = Path(tempfile.mkdtemp(prefix="kw-dovecot-"))
    try:
        with DovecotServer(folder, users=users) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mailbox_user(dovecot) -> str:
    """A fresh, empty mailbox for this test: a Dovecot user no other test has used."""
    number = next(_users)
    assert number <= _MAILBOXES, "more mailbox tests than prepared users: raise _MAILBOXES"
    return f"intake{number}@acme.example"


@pytest.fixture
def imap(dovecot, mailbox_user):
    """An IMAP client logged into this test's mailbox, for APPENDing and looking."""
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(mailbox_user, "secret")
    yield client
    try:
        client.logout()
    except Exception:
        pass


@pytest.fixture(scope="session")
def mail_catcher():
    with MailCatcher() as catcher:
        yield catcher


@pytest.fixture
def smtp(mail_catcher):
    mail_catcher.clear()
    return mail_catcher


@pytest.fixture(scope="session")
def postgres():
    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (make install as root installs it)")
    folder = Path(tempfile.mkdtemp(prefix="kw-postgres-"))
    try:
        with PostgresServer(folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory, request) -> str:
    """One migrated database, copied for each test: migrations run once, every test starts clean."""
    if DATABASE == "postgresql":
        server = request.getfixturevalue("postgres")
        _admin(server, "CREATE DATABASE kw_template")
        upgrade(server.url("kw_template"))
        return server.url("kw_template")
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return f"sqlite:///{path}"


def _admin(server, statement: str) -> None:
    engine = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture
def database_url(migrated_template, tmp_path, request):
    """A fresh database for one test: a copy of the migrated template (a file, or PostgreSQL's TEMPLATE)."""
    # Asked for with request.getfixturevalue, it would escape the `db` marker and the PostgreSQL pass.
    assert request.node.get_closest_marker("db"), "take the database through a fixture argument, not getfixturevalue"
    if DATABASE == "postgresql":
        server = request.getfixturevalue("postgres")
        name = f"test_{next(_databases)}"
        _admin(server, f"CREATE DATABASE {name} TEMPLATE kw_template STRATEGY FILE_COPY")
        yield server.url(name)
        _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    database = tmp_path / "keepwarm.db"
    shutil.copy(sa.engine.make_url(migrated_template).database, database)
    yield f"sqlite:///{database}"


@pytest.fixture
def settings(tmp_path, database_url, request) -> Settings:
    values = {"database_url": database_url, "intake_address": INTAKE,
              "internal_domains": ("acme.example",), "instance_dir": tmp_path, "secret_key": "test-secret",
              "base_url": "http://keepwarm.test", "poll_interval": 60, "read_workers": 1}
    for name in ("redis_server", "mail_catcher"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            values["redis_url" if name == "redis_server" else "smtp_url"] = server.url
    if "mailbox_user" in request.fixturenames:
        dovecot = request.getfixturevalue("dovecot")
        values["imap_url"] = dovecot.url(request.getfixturevalue("mailbox_user"))
    loaded = load_settings(values, environ={}, env_file=None)
    context.configure(loaded)
    return loaded


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reps(engine):
    """The reps of tests/corpus/CONVENTIONS.md, in a team whose policy sends without the rep's confirmation: the
    flow tests must not hang on how sure the trained reader is of their notes (tests/integration/test_held.py
    tests holding, with policies of its own)."""
    with Session(engine) as session:
        session.add(PolicyRecord(values=Policy(confirmation="auto").to_dict(), author="tests"))
        session.commit()
    return [save_rep(engine, email, name=name, timezone=tz, aliases=aliases) for email, name, tz, aliases in REPS]


@pytest.fixture
def app(settings, engine, reps, redis):
    """The web app on this test's database, for Flask's test client."""
    from service import create_app

    app = create_app(settings)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()
