"""`keepwarm run`: the whole service on one machine, with private servers for whatever is not configured.

A child that dies (a crash, a kill -9, a full disk) is started again after a wait that doubles with each quick
death; only SIGTERM or Ctrl-C stops everything. Killed itself (kill -9), it takes every process it started along:
the kernel sends each of them SIGTERM (PR_SET_PDEATHSIG).

While it runs, the run file in the instance folder tells commands typed in another terminal where its servers are.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click

from service.db import upgrade
from service.run.devstack import MailCatcher, RedisServer, demo_mailbox, ending_with_this_process, free_port
from service.settings import RUN_FILE, RunningStack, Settings, process_started, read_running_stack

DEMO_PASSWORD = "keepwarm"
RESTART_FIRST = 1.0  # seconds before a dead child is started again…
RESTART_MAX = 30.0  # …doubling with each quick death, up to this
STABLE_AFTER = 60.0  # a child that ran this long before dying starts again after RESTART_FIRST


def run_all(settings: Settings, *, host: str, port: int, debug: bool = False) -> int:
    """Start what is missing, then web + worker + poller; stop everything on Ctrl-C or SIGTERM."""
    _refuse_a_second_run(settings.instance_dir)
    with contextlib.ExitStack() as stack:
        settings, started = _start_private_servers(settings, stack)
        upgrade(settings.database_url)
        children = _spawn_children(settings, host, port, debug)
        stack.callback(_stop_children, children)
        _write_run_file(settings, stack)
        _print_banner(settings, started, host, port)
        return _supervise(children)


def _refuse_a_second_run(instance_dir: Path) -> None:
    """One `keepwarm run` per instance folder: a second would share the first one's Redis folder and run file."""
    running = read_running_stack(instance_dir)
    if running is None:
        return
    if running.alive:
        raise click.ClickException(f"`keepwarm run` is already running with this instance folder (pid {running.pid},"
                                   f" {running.path}): stop it first, or set KEEPWARM_INSTANCE_DIR to another folder")
    click.echo(f"ignoring {running.path}: the `keepwarm run` that wrote it (pid {running.pid}) is no longer running",
               err=True)


def _write_run_file(settings: Settings, stack: contextlib.ExitStack) -> None:
    """Say where our servers are, for commands in another terminal (mode 600: URLs may hold passwords)."""
    path = settings.instance_dir / RUN_FILE
    record = RunningStack(path, os.getpid(), process_started(os.getpid()), _stack_urls(settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{RUN_FILE}.{os.getpid()}")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(record.to_json())
    os.replace(partial, path)  # readers see the whole file or none
    stack.callback(path.unlink, missing_ok=True)


def _start_private_servers(settings: Settings, stack: contextlib.ExitStack) -> tuple[Settings, list[str]]:
    devstack = settings.instance_dir / "devstack"
    started: list[str] = []
    if not settings.redis_url:
        redis = stack.enter_context(RedisServer(devstack / "redis", persistent=True))
        settings = replace(settings, redis_url=redis.url)
        started.append(f"Redis          {redis.url}  (data in {redis.folder})")
    if not settings.imap_url:
        settings, line = _start_demo_mailbox(settings, devstack / "imap", stack)
        started.append(line)
    if not settings.smtp_url:
        catcher = stack.enter_context(MailCatcher(settings.instance_dir / "mail"))
        settings = replace(settings, smtp_url=catcher.url)
        started.append(f"Mail catcher   {catcher.url}  (every email sent is saved in {catcher.folder}/)")
    return settings, started


def _start_demo_mailbox(settings: Settings, folder: Path, stack) -> tuple[Settings, str]:
    """A private Dovecot when it is installed, else pymap (pure Python, mail kept in memory)."""
    port = _stable_port(folder)
    try:
        mailbox = demo_mailbox(folder, port, users={settings.intake_address: DEMO_PASSWORD})
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error
    stack.callback(mailbox.stop)
    kept = f"mail in {folder}/home" if mailbox.name == "dovecot" else "mail kept in memory until Ctrl-C"
    line = (f"Demo mailbox   imap://127.0.0.1:{mailbox.port}  login {settings.intake_address} / {DEMO_PASSWORD}"
            f"  ({mailbox.name}, {kept})")
    return replace(settings, imap_url=mailbox.url()), line


def _stable_port(folder: Path) -> int:
    """The demo mailbox keeps its port across runs, so a mail client set up once keeps working."""
    remembered = folder / "port"
    if remembered.exists():
        port = int(remembered.read_text())
        with contextlib.suppress(OSError):
            import socket

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
            return port
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    remembered.write_text(str(port))
    return port


def _stack_urls(settings: Settings) -> dict[str, str]:
    """The servers every process of this run uses (the children's environment, the run file)."""
    return {"KEEPWARM_DATABASE_URL": settings.database_url, "KEEPWARM_REDIS_URL": settings.redis_url or "",
            "KEEPWARM_IMAP_URL": settings.imap_url or "", "KEEPWARM_SMTP_URL": settings.smtp_url or ""}


def _child_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **_stack_urls(settings), "KEEPWARM_INSTANCE_DIR": str(settings.instance_dir)}


@dataclass
class Child:
    """One process of `keepwarm run`, started again with backoff whenever it dies."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = RESTART_FIRST
    restart_at: float | None = None

    def start(self) -> Child:
        # Always from the main thread (run_all, then _supervise), so the kernel's SIGTERM comes when we end.
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=ending_with_this_process())
        self.started_at, self.restart_at = time.monotonic(), None
        return self

    def look_after(self, now: float) -> None:
        """Start it again once its wait is over; when it has just died, say so and set the wait."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self.started_at >= STABLE_AFTER:
            self.delay = RESTART_FIRST
        self.restart_at = now + self.delay
        click.echo(f"{self.name} stopped unexpectedly (exit code {code}); starting it again in {self.delay:.0f} s",
                   err=True)
        self.delay = min(self.delay * 2, RESTART_MAX)


def _spawn_children(settings: Settings, host: str, port: int, debug: bool) -> list[Child]:
    base = [sys.executable, "-m", "service.cli", *(["--debug"] if debug else [])]
    commands = {"web": [*base, "web", "--host", host, "--port", str(port)],
                "worker": [*base, "worker"], "poller": [*base, "poll"]}
    env = _child_env(settings)
    return [Child(name, argv, env).start() for name, argv in commands.items()]


def _print_banner(settings: Settings, started: list[str], host: str, port: int) -> None:
    lines = ["", "Keepwarm is running.", f"  Web            http://{host}:{port}/  (health: /healthz)",
             f"  BCC address    {settings.intake_address}", *[f"  {s}" for s in started],
             f"  Database       {settings.database_url}",
             "", "Try it in another terminal, from this folder (commands find this stack through "
             f"{settings.instance_dir / RUN_FILE}):",
             "  `.venv/bin/keepwarm demo` appends a sample recap to the mailbox;",
             "  `.venv/bin/keepwarm inbox list` shows what was read.  Ctrl-C stops everything.", ""]
    click.echo("\n".join(lines))


def _supervise(children: list[Child]) -> int:
    """Start again every child that dies, until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        for child in children:
            child.look_after(time.monotonic())
        stop.wait(0.5)
    return 0


def _stop_children(children: list[Child]) -> None:
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + 15
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
