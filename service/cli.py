"""The `keepwarm` command. Every subcommand has --help."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import select

from service import context
from service.db import session_scope, upgrade
from service.logs import setup_logging
from service.models import InboundMessage, Rep, RepAddress
from service.settings import Settings, SettingsError, load_settings, read_running_stack

logger = logging.getLogger(__name__)

# Roles that run for hours: their log is the record, so an unexpected error leaves its traceback there too.
_SERVING = frozenset({"run", "web", "worker", "poll"})
# What to set when a command needs a server whose URL is unset and no `keepwarm run` provides one.
_URL_EXAMPLES = {"KEEPWARM_IMAP_URL": "imap://user:password@host:143/INBOX",
                 "KEEPWARM_SMTP_URL": "smtp://user:password@host:587?starttls=1",
                 "KEEPWARM_REDIS_URL": "redis://host:6379/0"}


class _Group(click.Group):
    """Every error ends the command with one line on stderr saying what to fix (exit code 1);
    `keepwarm --debug …` lets the Python traceback through instead."""

    def invoke(self, ctx):
        if ctx.params.get("debug"):
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            explained = _explain(error)
            if explained is None and ctx.invoked_subcommand in _SERVING:
                logger.error("keepwarm %s stopped on an unexpected error", ctx.invoked_subcommand, exc_info=error)
            raise click.ClickException(explained or _unexpected(error)) from None


def _explain(error: Exception) -> str | None:
    """One line for the errors a configuration causes, naming the setting and what to do; None for the others."""
    if isinstance(error, (SettingsError, RuntimeError)):
        return _explain_setting(error)
    if isinstance(error, (OperationalError, ProgrammingError)):
        return _explain_database(error)
    if isinstance(error, RedisConnectionError):
        return f"Redis does not answer: {_first_line(error)}: start it, or check KEEPWARM_REDIS_URL"
    return None


def _explain_setting(error: Exception) -> str | None:
    text = _first_line(error)
    unset = re.match(r"(KEEPWARM_[A-Z_]+) is not set", text)
    if unset and unset[1] in _URL_EXAMPLES:
        return (f"{unset[1]} is not set: start `keepwarm run` (or `make run`) in another terminal from this folder, "
                f"or set it, e.g. {unset[1]}={_URL_EXAMPLES[unset[1]]}")
    return text if isinstance(error, SettingsError) else None


def _explain_database(error: OperationalError | ProgrammingError) -> str | None:
    text = str(error)
    if "no such table" in text or (isinstance(error, ProgrammingError) and "does not exist" in text):
        return "the database has no tables yet: run `keepwarm db upgrade`"
    if isinstance(error, OperationalError):
        return f"the database does not answer: {_first_line(error.orig)}: start it, or check KEEPWARM_DATABASE_URL"
    return None


def _unexpected(error: Exception) -> str:
    return f"{type(error).__name__}: {_first_line(error)} (`keepwarm --debug …` shows the traceback)"


def _first_line(error: BaseException | None) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log debug lines.")
@click.option("--debug", is_flag=True, help="On an error, show the Python traceback instead of one line.")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Keepwarm: after a lost sale, thank the customer, plan the recontact, ask the rep for a debrief."""
    # `run` starts its own servers; every other command also finds those of a `keepwarm run` that is running.
    settings = load_settings() if ctx.invoked_subcommand == "run" else _settings_beside_a_run()
    _check_server_urls(settings)
    services = _configure(settings)
    setup_logging(debug=verbose, json_lines=services.settings.log_json)


def _settings_beside_a_run() -> Settings:
    """Settings from `.env` and the environment; what they leave unset, from the run file of a `keepwarm run`
    that is running with the same instance folder."""
    settings = load_settings()
    running = read_running_stack(settings.instance_dir)
    if running is None:
        return settings
    if not running.alive:
        click.echo(f"ignoring {running.path}: the `keepwarm run` that wrote it (pid {running.pid}) is no longer "
                   "running", err=True)
        return settings
    joined = load_settings(fallback=running.urls)
    if joined != settings:
        click.echo(f"using the stack `keepwarm run` started at {running.path}", err=True)
    return joined


def _check_server_urls(settings: Settings) -> None:
    """A database or Redis URL its library cannot use, named now rather than by a traceback from deep inside."""
    from redis.connection import parse_url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(settings.database_url).get_dialect().import_dbapi()
    except (ArgumentError, ImportError) as error:
        raise SettingsError(f"KEEPWARM_DATABASE_URL: {_first_line(error)}: use e.g. sqlite:////path/to/keepwarm.db "
                            "or postgresql+psycopg://user:password@host/keepwarm") from error
    if settings.redis_url:
        try:
            parse_url(settings.redis_url)
        except ValueError as error:
            raise SettingsError(f"KEEPWARM_REDIS_URL: {error}: use e.g. redis://host:6379/0") from error


def _configure(settings: Settings) -> context.Services:
    try:
        return context.configure(settings)
    except OSError as error:  # the generated secret key could not be written
        raise SettingsError(f"KEEPWARM_INSTANCE_DIR: cannot write {error.filename or settings.instance_dir} "
                            f"({error.strerror or error}): set it to a folder this user can write") from error


def _services() -> context.Services:
    return context.current()


def _serving_services() -> context.Services:
    """Services for a long-running role (web, worker, poller): refuses a default or missing secret key."""
    from service.settings import check_secret_key

    services = _services()
    check_secret_key(services.settings)
    return services


# -- database ------------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration."""
    upgrade(_services().settings.database_url)
    click.echo("database is up to date")


# -- reps ----------------------------------------------------------------------------------------------
@main.group()
def reps() -> None:
    """Who may trigger follow-ups."""


@reps.command("add")
@click.argument("email")
@click.option("--name", required=True, help="Shown to customers as the sender.")
@click.option("--timezone", default=None, help="IANA zone, e.g. Europe/Rome (default: KEEPWARM_TIMEZONE).")
@click.option("--alias", "aliases", multiple=True, help="An alternative address (repeatable).")
def reps_add(email: str, name: str, timezone: str | None, aliases: tuple[str, ...]) -> None:
    """Register a rep (or update their name, time zone and aliases)."""
    from service.team.reps import save_rep

    services = _services()
    try:
        rep = save_rep(services.engine, email, name=name, timezone=timezone or services.settings.timezone,
                       aliases=aliases, intake_address=services.settings.intake_address)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"rep {rep.email} ({rep.name}, {rep.timezone})")


@reps.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def reps_list(as_json: bool) -> None:
    """List the reps."""
    with session_scope(_services().engine) as session:
        aliases: dict[int, list[str]] = {}
        for alias in session.exec(select(RepAddress)):
            aliases.setdefault(alias.rep_id, []).append(alias.email)
        rows = [{"email": r.email, "name": r.name, "timezone": r.timezone, "active": r.active,
                 "aliases": aliases.get(r.id, [])} for r in session.exec(select(Rep).order_by(Rep.email))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        extra = f" aliases: {', '.join(row['aliases'])}" if row["aliases"] else ""
        click.echo(f"{row['email']:<40} {row['name']:<24} {row['timezone']}{'' if row['active'] else ' (disabled)'}{extra}")


@reps.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would change, row by row; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict of every row as a JSON array.")
def reps_import(file: Path, dry_run: bool, as_json: bool) -> None:
    """Create or update reps from a CSV file (email, name, time zone, aliases, language).

    The good rows are written in one transaction, the bad ones listed by row number (the header is row 1);
    exit code 1 when any row was refused."""
    from service.team.rep_import import ImportRefused, import_reps

    services = _services()
    try:
        report = import_reps(services.engine, file.read_bytes(), dry_run=dry_run,
                             default_timezone=services.settings.timezone, actor="cli",
                             intake_address=services.settings.intake_address)
    except ImportRefused as refused:
        raise click.ClickException(f"{file}: {refused}") from None
    if as_json:
        click.echo(json.dumps([vars(v) for v in report.rows], indent=2, ensure_ascii=False))
    else:
        for verdict in report.rows:
            if verdict.status != "unchanged":
                said = verdict.error or "; ".join(verdict.changes)
                click.echo(f"row {verdict.row:<6} {verdict.status:<9} {verdict.email}{'  ' + said if said else ''}")
    click.echo(report.summary(), err=as_json)
    if report.errors:
        sys.exit(1)


@reps.command("calendar")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Draw a new key: the old URL stops working (410), a new one is printed.")
def reps_calendar(email: str, revoke: bool) -> None:
    """Print the rep's calendar feed URL (their recontacts and debrief reminders), or revoke it."""
    from service.audit import record
    from service.team.feeds import feed_url, revoke_feed, webcal_url
    from service.tokens import Signer

    services = _serving_services()  # the URL is signed with the web app's own key
    with session_scope(services.engine) as session:
        rep = session.exec(select(Rep).where(Rep.email == email.strip().lower())).first()
        if rep is None:
            raise click.ClickException(f"no rep {email}: `keepwarm reps list` shows who there is")
        if revoke:
            revoke_feed(rep)
            record(session, "rep.calendar_revoke", admin_id=None, actor="cli", target=rep.email)
        url = feed_url(Signer(services.settings), rep)
    if revoke:
        click.echo("the old calendar URL is revoked; the new one:", err=True)
    click.echo(url)
    click.echo(f"Apple Calendar: {webcal_url(url)}", err=True)


# -- reading mail --------------------------------------------------------------------------------------
@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def parse(files: tuple[Path, ...]) -> None:
    """How each raw email would be read: one JSON object per line. Changes nothing."""
    from service.intake.reading import read_raw
    from service.intake.store import BatchDirectory, directory_for

    services = _services()
    with session_scope(services.engine) as session:
        directory: BatchDirectory = directory_for(session, [])
        for path in files:
            click.echo(json.dumps(_parse_one(path, services.settings, directory, read_raw), ensure_ascii=False))


def _parse_one(path: Path, settings, directory, read_raw) -> dict:
    """Read one file; Message-IDs already in the database, or earlier in this run, read as duplicates."""
    try:
        raw = path.read_bytes()
        reading = read_raw(raw, settings, directory)
    except Exception as error:  # one unreadable file must not stop the others
        return {"file": str(path), "error": f"{type(error).__name__}: {error}"}
    directory.first_ids.setdefault(reading.message_id, 0)
    return {"file": str(path), **reading.to_json()}


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def ingest(files: tuple[Path, ...]) -> None:
    """Feed .eml files through the same pipeline as the mailbox."""
    from service.pipeline.process import ingest_files

    services = _services()
    results = ingest_files(services, list(files))
    for path, status, reason in results:
        click.echo(f"{path}: {status}{' (' + reason + ')' if reason else ''}")
    if any(status == "error" for _, status, _ in results):
        sys.exit(1)


@main.command("eval-notes")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--misses/--no-misses", default=True, help="List every field read wrong.")
@click.option("--rules-only", is_flag=True, help="Score the rule reader without the trained model.")
def eval_notes(folders: tuple[Path, ...], misses: bool, rules_only: bool) -> None:
    """Score the note reader on labelled corpora (default: the frozen test split): per-field accuracy, per-class
    outcome scores and confusion, the reliability of each field's confidence, then every miss.

    Each FOLDER is a corpus (cases/, expected.json, reps.json) or a split folder holding several."""
    from service.corpus.score import format_scores, score
    from service.corpus.train import TEST, load_split
    from service.notes.learned import load_model

    cases = load_split(list(folders) or list(TEST))
    if not cases:
        raise click.ClickException("no labelled cases found (a corpus folder holds cases/ and expected.json)")
    model = None if rules_only else load_model()
    scores = score(cases, model or None, customers=True)
    scores.thresholds = dict(model.thresholds) if model else {}
    click.echo(format_scores(scores, misses=misses))


@main.command("train-notes")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the model (default: service/notes/model/reader.pickle.gz).")
def train_notes(output: Path | None) -> None:
    """Fit the note reader's model on the train split, calibrate its thresholds on dev, and save it."""
    from service.corpus.common_words import first_names, texts_by_language, write_common_words
    from service.corpus.score import format_scores, score
    from service.corpus.train import TRAIN, load_split, save, train
    from service.notes.learned import ARTIFACT

    labelled = load_split(TRAIN)
    sizes = write_common_words(texts_by_language(labelled), first_names(labelled))
    click.echo(f"common words counted on train: {sizes}")
    model, dev = train(cases=labelled)
    path = save(model, output or ARTIFACT)
    click.echo(f"trained on {model.trained_on}, thresholds {model.thresholds}; saved {path}")
    if dev:
        scores = score(dev, model)
        scores.thresholds = dict(model.thresholds)
        click.echo("--- dev ---")
        click.echo(format_scores(scores, misses=False))


@main.command()
@click.option("--once", is_flag=True, help="Fetch what is there, read it, file it, then exit.")
def poll(once: bool) -> None:
    """The mailbox poller (IDLE when offered, with a periodic poll as safety net)."""
    from service.intake.lock import PollerLock
    from service.pipeline.polling import poller

    services = _serving_services()
    mailbox = poller(services.settings, services.engine, services=services)
    if once:
        stats = mailbox.poll_once()
        mailbox.close()
        click.echo(f"fetched {stats.fetched}, read {stats.processed}, failed {stats.failed}, moved {stats.moved}")
        return
    mailbox.lock = PollerLock(services.redis, mailbox.key)
    _run_until_signal(mailbox.run)
    mailbox.lock.release()


def _run_until_signal(target) -> None:
    """Run target(stop_event) and set the event on SIGTERM/SIGINT, so the loop ends cleanly."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    target(stop)


@main.command()
@click.option("--burst", is_flag=True, help="Run everything that is due now, then exit.")
def worker(burst: bool) -> None:
    """An RQ worker (with the scheduler) for the intake, outbox and maintenance queues."""
    from service.run.worker import run_worker

    run_worker(_serving_services(), burst=burst)


# -- inbox ---------------------------------------------------------------------------------------------
@main.group()
def inbox() -> None:
    """Inbound messages."""


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", type=click.Choice(["new", "processed", "ignored", "quarantined"]), default=None)
@click.option("--limit", default=200, show_default=True)
def inbox_list(as_json: bool, status: str | None, limit: int) -> None:
    """Inbound messages with their status and reason, newest first."""
    with session_scope(_services().engine) as session:
        query = select(InboundMessage.id, InboundMessage.message_id, InboundMessage.status, InboundMessage.reason,
                       InboundMessage.received_at, InboundMessage.size, InboundMessage.folder)
        if status:
            query = query.where(InboundMessage.status == status)
        rows = [{"id": r.id, "message_id": r.message_id, "status": r.status, "reason": r.reason,
                 "received_at": r.received_at.isoformat(), "size": r.size, "folder": r.folder}
                for r in session.exec(query.order_by(InboundMessage.id.desc()).limit(limit))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>6} {row['received_at'][:19]} {row['status']:<11} {row['reason'] or '':<16} "
                   f"{row['message_id']}")


# -- running -------------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def web(host: str, port: int) -> None:
    """The web app alone (`/healthz` answers 200 when the database and Redis answer)."""
    from werkzeug.serving import run_simple

    from service import create_app

    run_simple(host, port, create_app(_serving_services().settings), threaded=True, use_reloader=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def run(host: str, port: int) -> None:
    """Web + worker (with scheduler) + mailbox poller together, with private servers for what is not set."""
    from service.run.supervisor import run_all

    # The children refuse a bad secret key: say it once here rather than have them restarted again and again.
    debug = click.get_current_context().find_root().params["debug"]
    sys.exit(run_all(_serving_services().settings, host=host, port=port, debug=debug))


@main.command()
@click.option("--rep", default="demo.rep@example.com", show_default=True, help="Registered first if unknown.")
@click.option("--customer", default="maria.rossi@customer.example", show_default=True)
@click.option("--reply", default=None, help='Instead: the rep answers their latest summary ("recontact in June").')
def demo(rep: str, customer: str, reply: str | None) -> None:
    """APPEND a sample BCC'd recap to the mailbox, as a rep's mail client would deliver it (or, with --reply, the
    rep's answer to the summary)."""
    from service.run.demo import append_demo_recap, append_demo_reply

    services = _services()
    click.echo(append_demo_reply(services, rep=rep, words=reply) if reply else
               append_demo_recap(services, rep=rep, customer=customer))



# -- outbox --------------------------------------------------------------------------------------------
@main.group()
def outbox() -> None:
    """Scheduled emails."""


@outbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", type=click.Choice(["scheduled", "held", "sending", "sent", "canceled", "failed"]), default=None)
@click.option("--kind", type=click.Choice(["thank_you", "recontact", "rep_summary", "debrief_reminder",
                                           "rep_notice", "rep_answer"]), default=None)
@click.option("--limit", default=500, show_default=True)
def outbox_list(as_json: bool, status: str | None, kind: str | None, limit: int) -> None:
    """Scheduled and sent emails, soonest due first."""
    from service.outbox.actions import list_outbound

    rows = list_outbound(_services().engine, status=status, kind=kind, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:>6} {row['due_at'][:16]} {row['status']:<9} {row['kind']:<16} {row['to']}"
                   f"{' (' + row['reason'] + ')' if row['reason'] else ''}")


@outbox.command("send-now")
@click.argument("outbound_id", type=int)
def outbox_send_now(outbound_id: int) -> None:
    """Move a scheduled email's due time to now and queue it; an email already sent is left alone."""
    from service.outbox.actions import send_now

    click.echo(send_now(_services(), outbound_id))


@outbox.command("cancel")
@click.argument("outbound_id", type=int)
def outbox_cancel(outbound_id: int) -> None:
    """Cancel a scheduled email."""
    from service.outbox.actions import cancel

    click.echo(cancel(_services().engine, outbound_id, reason="canceled from the command line"))


@outbox.command("retry-failed")
def outbox_retry_failed() -> None:
    """Send again now every email the SMTP relay failed (sender, login, content refused; unreachable): run it once
    the relay is fixed. Emails refused because of the customer's own address are left failed."""
    from service.outbox.actions import retry_failed

    click.echo(retry_failed(_services()))


@outbox.command("reconcile")
def outbox_reconcile() -> None:
    """Re-enqueue every scheduled email that is missing from Redis (also runs periodically)."""
    from service.outbox.schedule import reconcile

    click.echo(f"{reconcile(_services())} scheduled emails re-enqueued")


# -- admins --------------------------------------------------------------------------------------------
@main.group()
def admins() -> None:
    """Admin logins for the web pages under /admin/."""


@admins.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def admins_create(email: str, password_stdin: bool) -> None:
    """Create an admin login, or set a new password for an existing one (which ends its sessions)."""
    from service.team.admins import create_admin

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        admin = create_admin(_services().engine, email, password)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"admin {admin.email} can log in at {_services().settings.base_url.rstrip('/')}/admin/")


# -- data care -----------------------------------------------------------------------------------------
@main.group()
def customers() -> None:
    """Data-subject requests."""


@customers.command("export")
@click.argument("email")
def customers_export(email: str) -> None:
    """Print, as JSON, everything Keepwarm holds about one customer address."""
    from service.customers.privacy import export_customer

    click.echo(json.dumps(export_customer(_services().engine, email), indent=2, ensure_ascii=False))


@customers.command("deliverable")
@click.argument("email")
def customers_deliverable(email: str) -> None:
    """Clear a customer's undeliverable mark; their emails still to come that it canceled are scheduled again."""
    from service.outbox.actions import clear_undeliverable

    click.echo(clear_undeliverable(_services(), email=email))


@customers.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def customers_forget(email: str, yes: bool) -> None:
    """Erase a customer's data (the address stays suppressed so nobody writes to it again)."""
    from service.customers.privacy import forget_customer

    if not yes:
        click.confirm(f"Erase everything about {email}?", abort=True)
    click.echo(json.dumps(forget_customer(_services().engine, email)))


from service.run.check import check  # noqa: E402 - `keepwarm check`: IMAP and SMTP logins, one verdict each

main.add_command(check)

if __name__ == "__main__":  # pragma: no cover
    main()
