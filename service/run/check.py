"""`keepwarm check`: log in to the mailbox and the relay the way the poller and the worker do, one verdict each."""

from __future__ import annotations

import ssl

import click

from service import context
from service.settings import Settings

# What to try when the verdict is one of these.
_HINTS = (
    (ssl.SSLCertVerificationError, "set KEEPWARM_CA_FILE to the PEM bundle of the CA that signed the server's "
                                   "certificate, or fix the host name in the URL"),
)


@click.command()
def check() -> None:
    """Log in to IMAP and SMTP with the configured URLs, TLS and login method; one line each (exit 1 on a
    failure). The IMAP check creates Keepwarm's two folders when missing, as the poller would; nothing is sent."""
    settings = context.current().settings
    verdicts = [_verdict("IMAP", settings.imap_url, lambda: _check_imap(settings)),
                _verdict("SMTP", settings.smtp_url, lambda: _check_smtp(settings))]
    for line, _ in verdicts:
        click.echo(line)
    if not all(ok for _, ok in verdicts):
        raise SystemExit(1)


def _verdict(name: str, url: str | None, attempt) -> tuple[str, bool]:
    if not url:
        return f"{name}: skipped, KEEPWARM_{name}_URL is not set", True
    try:
        return f"{name}: ok, {attempt()}", True
    except Exception as error:  # a verdict, not a crash: every failure is one line to act on
        return f"{name}: FAILED, {_describe(error)}", False


def _describe(error: Exception) -> str:
    text = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
    hints = [hint for kind, hint in _HINTS if isinstance(error, kind) or isinstance(error.__cause__, kind)]
    return f"{text} ({hints[0]})" if hints else text


def _check_imap(settings: Settings) -> str:
    from service.intake.imap import Mailbox

    mailbox = Mailbox(settings, None, record=lambda readings: {})
    try:
        client = mailbox.connect()
        waiting = client.select_folder(mailbox.folder, readonly=True).get(b"EXISTS", 0)
        return f"{mailbox.url.redacted()} ({_security(mailbox.url, client.socket())}, " \
               f"{settings.imap_auth} login), {waiting} message(s) in {mailbox.folder}"
    finally:
        mailbox.close()


def _check_smtp(settings: Settings) -> str:
    from service.outbox.transport import SmtpTransport

    transport = SmtpTransport(settings.smtp(), timeout=20, settings=settings)
    try:
        connection = transport._open()  # the worker's own way in: TLS, STARTTLS, login
        return f"{transport.url.redacted()} ({_security(transport.url, connection.sock)}, " \
               f"{settings.smtp_auth} login)"
    finally:
        transport.close()


def _security(url, sock) -> str:
    version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return f"{version}, certificate verified" if version else "no TLS: plain text on the network"
