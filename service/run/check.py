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
    verdicts = []
    oauth = _oauth_user(settings)
    if oauth is not None:  # the credential first: a refused one is said once, with what to do
        verdicts.append(_verdict("OAuth2", "set", lambda: _check_token(settings, oauth)))
    no_token = bool(verdicts) and not verdicts[0][1]
    for name, url, auth in (("IMAP", settings.imap_url, settings.imap_auth),
                            ("SMTP", settings.smtp_url, settings.smtp_auth)):
        same_token = settings.oauth_provider != "google" or _user(settings, name) == oauth  # Google's: per mailbox
        if no_token and url and auth == "xoauth2" and same_token:
            verdicts.append((f"{name}: FAILED, no OAuth2 token (see the OAuth2 line)", False))
        else:
            verdicts.append(_verdict(name, url, lambda check=_CHECKS[name]: check(settings)))
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
    text = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}" if not isinstance(error, _Refused) \
        else str(error)
    hints = [hint for kind, hint in _HINTS if isinstance(error, kind) or isinstance(error.__cause__, kind)]
    for cause in (error, error.__cause__):
        if getattr(cause, "hint", None):  # TokenError: what the endpoint's refusal means for this provider
            hints.insert(0, cause.hint)
    return f"{text} ({hints[0]})" if hints else text


def _oauth_user(settings: Settings) -> str | None:
    """The login whose token `check` fetches first: the mailbox's, else the relay's; None without XOAUTH2."""
    for name, url, auth in (("IMAP", settings.imap_url, settings.imap_auth),
                            ("SMTP", settings.smtp_url, settings.smtp_auth)):
        if url and auth == "xoauth2":
            return _user(settings, name) or ""
    return None


def _user(settings: Settings, name: str) -> str | None:
    return (settings.imap() if name == "IMAP" else settings.smtp()).username


def _check_token(settings: Settings, user: str) -> str:
    from service.mailauth import token_provider

    tokens = token_provider(settings, user)
    tokens.token()
    minutes = (tokens.expires_in() or 0) / 60
    return f"{tokens.provider} token from {tokens.where()} for {user} (renewed in {minutes:.0f} min)"


def _refused_token_hint(settings: Settings, name: str) -> str:
    if settings.oauth_provider == "microsoft":
        return (f"the {name} server refused a fresh access token: give the app's service principal the mailbox "
                "(Add-MailboxPermission) and the API permission IMAP.AccessAsApp / SMTP.SendAsApp with admin consent")
    if settings.oauth_provider == "google":
        return (f"the {name} server refused a fresh access token: is IMAP on for the mailbox, and the scope "
                "https://mail.google.com/ in the domain-wide delegation?")
    return f"the {name} server refused a fresh access token: check KEEPWARM_OAUTH_SCOPE and the URL's user"


def _check_imap(settings: Settings) -> str:
    from imapclient.exceptions import LoginError

    from service.intake.imap import Mailbox

    mailbox = Mailbox(settings, None, record=lambda readings: {})
    try:
        try:
            client = mailbox.connect()
        except LoginError as error:
            if settings.imap_auth == "xoauth2":
                raise _Refused(f"LoginError: {error}", _refused_token_hint(settings, "IMAP")) from None
            raise
        waiting = client.select_folder(mailbox.folder, readonly=True).get(b"EXISTS", 0)
        return f"{mailbox.url.redacted()} ({_security(mailbox.url, client.socket())}, " \
               f"{settings.imap_auth} login), {waiting} message(s) in {mailbox.folder}"
    finally:
        mailbox.close()


def _check_smtp(settings: Settings) -> str:
    from service.outbox.transport import PermanentSendError, SmtpTransport

    transport = SmtpTransport(settings.smtp(), timeout=20, settings=settings)
    try:
        try:
            connection = transport._open()  # the worker's own way in: TLS, STARTTLS, login
        except PermanentSendError as error:
            if settings.smtp_auth == "xoauth2" and error.stage == "auth":
                raise _Refused(f"PermanentSendError: {error.code} refused", _refused_token_hint(settings, "SMTP")) \
                    from None
            raise
        return f"{transport.url.redacted()} ({_security(transport.url, connection.sock)}, " \
               f"{settings.smtp_auth} login)"
    finally:
        transport.close()


class _Refused(Exception):
    """A server refused a token the endpoint had just issued: the app lacks a permission on the mail side."""

    def __init__(self, text: str, hint: str):
        super().__init__(text)
        self.text, self.hint = text, hint

    def __str__(self) -> str:
        return self.text


_CHECKS = {"IMAP": _check_imap, "SMTP": _check_smtp}


def _security(url, sock) -> str:
    version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    return f"{version}, certificate verified" if version else "no TLS: plain text on the network"
