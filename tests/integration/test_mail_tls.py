"""TLS to the mail servers, verified for real: a private CA made here, Dovecot with `ssl = required` on a
certificate it signed (imaps:// and STARTTLS), aiosmtpd with implicit TLS (smtps://) and with STARTTLS.

With KEEPWARM_CA_FILE the poller reads and the transport sends; without it the certificate is refused; a
STARTTLS URL against a server that does not offer STARTTLS is an error, never a login in plain text.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from service.intake.imap import NETWORK_ERRORS
from service.mailauth import TLSNotOffered
from service.outbox.compose import Outgoing
from service.outbox.transport import SmtpTransport, TransientSendError
from service.pipeline.polling import poller
from service.run.devstack import DovecotServer
from service.run.devstack.servers import dovecot_binary, free_port
from service.run.devstack.smtp import _Handler
from service.settings import load_settings
from tests.local_servers import imaps_login, keepwarm_check
from tests.mail import recap
from tests.private_ca import PrivateCA, make_private_ca

USERS = {f"tls{n}@acme.example": "secret" for n in range(1, 9)}
_free_users = iter(USERS)


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_dovecot(private_ca):
    """Dovecot that requires TLS: STARTTLS on `port`, implicit TLS on `imaps_port`, a certificate of our CA."""
    if dovecot_binary() is None:
        pytest.skip("dovecot is not installed (make install as root installs dovecot-imapd)")
    folder = Path(tempfile.mkdtemp(prefix="kw-dovecot-tls-"))  # not under pytest's 0700 root: see conftest
    try:
        with DovecotServer(folder, users=USERS, tls=(private_ca.certificate, private_ca.key)) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tls_user(tls_dovecot, private_ca) -> str:
    """A fresh mailbox on the TLS Dovecot, holding one recap."""
    user = next(_free_users)
    with imaps_login(tls_dovecot.imaps_port, private_ca, user, USERS[user]) as client:
        client.append("INBOX", recap(1))
    return user


def _imap_url(user: str, port: int, scheme: str = "imaps", query: str = "") -> str:
    return f"{scheme}://{user.replace('@', '%40')}:secret@127.0.0.1:{port}/INBOX{query}"


def test_the_poller_reads_over_imaps_with_the_private_ca(tls_dovecot, tls_user, private_ca, settings, engine,
                                                           reps):
    tls = settings.with_overrides(imap_url=_imap_url(tls_user, tls_dovecot.imaps_port), ca_file=private_ca.ca_file)
    mailbox = poller(tls, engine)
    try:
        stats = mailbox.poll_once()
        assert (stats.fetched, stats.moved) == (1, 1)
        assert mailbox.client.socket().version().startswith("TLS")
    finally:
        mailbox.close()


def test_the_poller_reads_over_starttls_with_the_private_ca(tls_dovecot, tls_user, private_ca, settings, engine,
                                                              reps):
    url = _imap_url(tls_user, tls_dovecot.port, "imap", "?starttls=1")
    mailbox = poller(settings.with_overrides(imap_url=url, ca_file=private_ca.ca_file), engine)
    try:
        assert mailbox.poll_once().fetched == 1
        assert isinstance(mailbox.client.socket(), ssl.SSLSocket)
    finally:
        mailbox.close()


@pytest.mark.parametrize("scheme, query", [("imaps", ""), ("imap", "?starttls=1")])
def test_without_the_ca_file_the_mailbox_certificate_is_refused(tls_dovecot, tls_user, settings, engine, scheme,
                                                                query):
    port = tls_dovecot.imaps_port if scheme == "imaps" else tls_dovecot.port
    mailbox = poller(settings.with_overrides(imap_url=_imap_url(tls_user, port, scheme, query)), engine)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        mailbox.poll_once()
    assert issubclass(ssl.SSLCertVerificationError, NETWORK_ERRORS)  # the poller backs off and reports it
    mailbox.close()


def test_a_starttls_url_against_an_imap_server_without_starttls_fails(dovecot, mailbox_user, settings, engine):
    url = dovecot.url(mailbox_user) + "?starttls=1"  # the session's Dovecot runs with `ssl = no`
    mailbox = poller(settings.with_overrides(imap_url=url), engine)
    with pytest.raises(TLSNotOffered, match="does not offer STARTTLS"):
        mailbox.poll_once()
    mailbox.close()


# -- SMTP -------------------------------------------------------------------------------------------------------
@pytest.fixture
def tls_relays(private_ca):
    """Three relays: implicit TLS (smtps), STARTTLS required, and plain without STARTTLS."""
    handler = _Handler(None)
    context = private_ca.server_context()
    relays = {"smtps": Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=context),
              "starttls": Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                                     require_starttls=True),
              "plain": Controller(handler, hostname="127.0.0.1", port=free_port())}
    for relay in relays.values():
        relay.start()
    yield handler, relays
    for relay in relays.values():
        relay.stop()


def _transport(relays, kind: str, ca_file: Path | None) -> SmtpTransport:
    scheme, query = ("smtps", "") if kind == "smtps" else ("smtp", "?starttls=1")
    settings = load_settings({"smtp_url": f"{scheme}://127.0.0.1:{relays[kind].port}{query}", "ca_file": ca_file},
                             environ={}, env_file=None)
    return SmtpTransport(settings.smtp(), timeout=10, settings=settings)


def _message() -> Outgoing:
    data = b"From: followup@acme.example\r\nTo: jane@globex.example\r\nSubject: hi\r\n\r\nHello\r\n"
    return Outgoing(sender="followup@acme.example", data=data)


@pytest.mark.parametrize("kind", ["smtps", "starttls"])
def test_the_transport_sends_over_tls_with_the_private_ca(tls_relays, private_ca, kind):
    handler, relays = tls_relays
    transport = _transport(relays, kind, private_ca.ca_file)
    try:
        transport.send(_message(), "jane@globex.example")
        assert isinstance(transport._connection.sock, ssl.SSLSocket)
    finally:
        transport.close()
    assert [c.recipients for c in handler.caught] == [["jane@globex.example"]]


@pytest.mark.parametrize("kind", ["smtps", "starttls"])
def test_without_the_ca_file_the_relay_certificate_is_refused(tls_relays, kind):
    handler, relays = tls_relays
    with pytest.raises(TransientSendError, match="CERTIFICATE_VERIFY_FAILED"):
        _transport(relays, kind, None).send(_message(), "jane@globex.example")
    assert handler.caught == []


def test_a_starttls_url_against_a_relay_without_starttls_fails(tls_relays, private_ca):
    handler, relays = tls_relays
    with pytest.raises(TransientSendError, match="does not offer STARTTLS"):
        _transport(relays, "plain", private_ca.ca_file).send(_message(), "jane@globex.example")
    assert handler.caught == []


# -- keepwarm check ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_keepwarm_check_gives_one_verdict_per_server(tmp_path, tls_dovecot, tls_user, tls_relays, private_ca):
    _, relays = tls_relays
    urls = {"KEEPWARM_IMAP_URL": _imap_url(tls_user, tls_dovecot.imaps_port),
            "KEEPWARM_SMTP_URL": f"smtp://127.0.0.1:{relays['starttls'].port}?starttls=1"}
    done = keepwarm_check(tmp_path, KEEPWARM_CA_FILE=private_ca.ca_file, **urls)
    assert done.returncode == 0, done.stdout + done.stderr
    imap_line, smtp_line = done.stdout.splitlines()
    assert imap_line.startswith("IMAP: ok, imaps://") and "certificate verified" in imap_line
    assert "1 message(s) in INBOX" in imap_line and "secret" not in done.stdout
    assert smtp_line.startswith("SMTP: ok, smtp://127.0.0.1:") and "certificate verified" in smtp_line
    refused = keepwarm_check(tmp_path, **urls)
    assert refused.returncode == 1
    assert [line.split(",")[0] for line in refused.stdout.splitlines()] == ["IMAP: FAILED", "SMTP: FAILED"]
    assert refused.stdout.count("set KEEPWARM_CA_FILE") == 2, refused.stdout
