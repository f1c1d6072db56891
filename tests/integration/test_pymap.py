"""The poller against pymap, the pure-Python demo mailbox `keepwarm run` starts when Dovecot is not installed."""

from __future__ import annotations

import contextlib
import socket

import click
import pytest
from imapclient import IMAPClient

from service.intake.imap import PROCESSED, QUARANTINE
from service.pipeline.polling import poller
from service.run import supervisor as runner
from service.run.devstack import PymapServer, servers
from tests.conftest import INTAKE
from tests.integration.test_mailbox import _message_ids_in, _rows, assert_picked_up_while_idling
from tests.integration.test_run import run_demo_round_trip
from tests.mail import recap

pytestmark = pytest.mark.slow  # every test starts a pymap server process
PASSWORD = "keepwarm"


@pytest.fixture
def pymap_server(tmp_path):
    """A fresh pymap for each test: in memory, so every test starts with an empty mailbox."""
    with PymapServer(tmp_path / "pymap", users={INTAKE: PASSWORD}) as server:
        yield server
    assert not _listens(server.port)


@pytest.fixture
def imap(pymap_server):
    client = IMAPClient("127.0.0.1", port=pymap_server.port, ssl=False)
    client.login(INTAKE, PASSWORD)
    yield client
    with contextlib.suppress(Exception):
        client.logout()


@pytest.fixture
def pymap_settings(settings, pymap_server):
    return settings.with_overrides(imap_url=pymap_server.url())


def _listens(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def test_the_mailbox_starts_empty_without_pymaps_demo_data(imap):
    assert [name for _, _, name in imap.list_folders()] == ["INBOX"]
    assert imap.select_folder("INBOX")[b"EXISTS"] == 0


def test_a_poll_files_every_recap_once_and_a_second_poll_finds_nothing(imap, pymap_settings, engine, reps):
    sent = []
    for n in range(6):
        imap.append("INBOX", recap(n))
        sent.append(f"<recap-{n}@mail.acme.example>")
    mailbox = poller(pymap_settings.with_overrides(fetch_batch=4), engine)
    stats = mailbox.poll_once()
    assert (stats.fetched, stats.processed, stats.moved) == (6, 6, 6)
    assert _message_ids_in(imap, "INBOX") == []
    assert sorted(_message_ids_in(imap, PROCESSED)) == sorted(sent)
    assert _message_ids_in(imap, QUARANTINE) == []
    rows = _rows(engine)
    assert sorted(r.message_id for r in rows) == sorted(sent)
    assert {r.status for r in rows} == {"processed"} and {r.folder for r in rows} == {PROCESSED}
    again = mailbox.poll_once()
    assert (again.fetched, again.processed, again.moved) == (0, 0, 0)
    assert len(_rows(engine)) == 6
    mailbox.close()


def test_mail_over_the_size_limit_is_quarantined(imap, pymap_settings, engine, reps):
    imap.append("INBOX", recap(1))
    imap.append("INBOX", recap(2, body="y" * 200_000))
    poller(pymap_settings.with_overrides(max_message_bytes=100_000), engine).poll_once()
    assert _message_ids_in(imap, PROCESSED) == ["<recap-1@mail.acme.example>"]
    assert _message_ids_in(imap, QUARANTINE) == ["<recap-2@mail.acme.example>"]
    assert [(r.status, r.folder) for r in _rows(engine)] == [("processed", PROCESSED), ("quarantined", QUARANTINE)]


def test_mail_appended_while_idling_is_picked_up(imap, pymap_settings, engine, reps):
    assert_picked_up_while_idling(poller(pymap_settings.with_overrides(poll_interval=120), engine), imap, engine)


def test_run_starts_pymap_when_dovecot_is_not_installed(settings, tmp_path, monkeypatch):
    # A missing binary cannot be produced on a machine that has Dovecot: the lookup says there is none.
    monkeypatch.setattr(servers, "dovecot_binary", lambda: None)
    with contextlib.ExitStack() as stack:
        configured, line = runner._start_demo_mailbox(settings, tmp_path / "imap", stack)
        assert "Demo mailbox" in line and "(pymap," in line and f"login {INTAKE} / keepwarm" in line
        url = configured.imap()
        with IMAPClient(url.host, port=url.port, ssl=False) as client:
            client.login(url.username, url.password)
            assert client.select_folder(url.path.strip("/"))[b"EXISTS"] == 0
    assert not _listens(url.port)


def test_without_dovecot_or_pymap_the_message_says_what_to_install(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(servers, "dovecot_binary", lambda: None)
    monkeypatch.setattr(servers, "pymap_available", lambda: False)
    with pytest.raises(click.ClickException, match="dovecot-imapd.*pip install pymap"), contextlib.ExitStack() as stack:
        runner._start_demo_mailbox(settings, tmp_path / "imap", stack)


# `keepwarm run` in a child process whose Dovecot lookup finds nothing, as on a machine without Dovecot.
_RUN_WITHOUT_DOVECOT = ("import service.run.devstack.servers as s; s.dovecot_binary = lambda: None; "
                        "from service.cli import main; main()")


@pytest.mark.slow
def test_run_without_dovecot_reads_a_demo_mail_from_pymap_and_stops_cleanly():
    output = run_demo_round_trip(["-c", _RUN_WITHOUT_DOVECOT], "kw-run-pymap-")
    assert "Demo mailbox" in output and "(pymap," in output and "login followup@example.com" in output
