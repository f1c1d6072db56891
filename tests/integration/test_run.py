"""`keepwarm run` (what `make run` starts): everything up, a demo email read from a second terminal, everything
down on SIGTERM, and everything down with it when it is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from service.run.devstack import free_port
from service.run.devstack.servers import dovecot_binary
from service.settings import RUN_FILE
from tests.mail import wait_until

pytestmark = pytest.mark.slow  # every test starts processes (`keepwarm run`, its children)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and str(os.getpid()) != proc.name:
            found.append(f"{proc.name}: {cmdline}")
    return found


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status
    except OSError:
        return 0


def _new_terminal() -> dict[str, str]:
    """This environment without a single KEEPWARM_* variable, as in a terminal just opened."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")}


def _keepwarm(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """A command typed in a second terminal, in the folder `keepwarm run` was started from."""
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=_new_terminal(), cwd=folder,
                          capture_output=True, text=True, timeout=60)


def _start_run(command: list[str], folder: Path) -> tuple[subprocess.Popen, Path]:
    """`keepwarm run` (started as `command`) in `folder` on its defaults, up and healthy; its output goes to a log
    (a pipe nobody reads would fill up and stop it)."""
    port = free_port()
    log = folder / "run.log"
    with open(log, "w") as output:
        run = subprocess.Popen([sys.executable, *command, "run", "--port", str(port)], cwd=folder,
                               env={**_new_terminal(), "KEEPWARM_POLL_INTERVAL": "30"}, stdout=output,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    while _healthz(port) != 200:
        assert run.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no healthy /healthz within 90s\n{log.read_text()}"
        time.sleep(0.3)
    return run, log


def _fresh_folder(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))  # see the dovecot fixture: not under pytest's temp root


def _demo_is_read(folder: Path) -> None:
    """`keepwarm demo` from a second terminal, with no KEEPWARM_* variable: it finds the stack `run` started."""
    run_file = folder / "instance" / RUN_FILE
    demo = _keepwarm(folder, "demo")
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == f"using the stack `keepwarm run` started at {run_file}\n"
    assert _eventually_processed(folder)


def run_demo_round_trip(command: list[str], prefix: str) -> str:
    """`keepwarm run` (started as `command`) up, `keepwarm demo` read, SIGTERM, nothing left; returns its output."""
    folder = _fresh_folder(prefix)
    run, log = _start_run(command, folder)
    run_file = folder / "instance" / RUN_FILE
    try:
        assert run_file.stat().st_mode & 0o777 == 0o600  # the URLs may hold passwords
        _demo_is_read(folder)
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    output = log.read_text()
    assert run.returncode == 0, output
    assert not run_file.exists()
    assert _processes_mentioning(str(folder)) == []
    shutil.rmtree(folder, ignore_errors=True)
    return output


@pytest.mark.slow
@pytest.mark.skipif(dovecot_binary() is None, reason="dovecot is not installed")
def test_run_starts_everything_reads_a_demo_mail_and_stops_cleanly():
    output = run_demo_round_trip(["-m", "service.cli"], "kw-run-")
    assert "Demo mailbox" in output and "login followup@example.com" in output and "BCC address" in output


@pytest.mark.slow
def test_a_second_run_in_the_same_folder_is_refused_in_one_line():
    folder = _fresh_folder("kw-run-twice-")
    run, log = _start_run(["-m", "service.cli"], folder)
    try:
        second = _keepwarm(folder, "run", "--port", str(free_port()))
        assert second.returncode == 1 and len(second.stderr.splitlines()) == 1, second.stderr
        assert second.stderr.startswith(f"Error: `keepwarm run` is already running with this instance folder "
                                        f"(pid {run.pid}")
        assert (folder / "instance" / RUN_FILE).exists()  # the first one's file is left alone
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    assert run.returncode == 0, log.read_text()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_killed_run_takes_every_server_and_child_it_started_along():
    folder = _fresh_folder("kw-run-kill-")
    run, log = _start_run(["-m", "service.cli"], folder)
    started: dict[int, str] = {}
    try:
        _demo_is_read(folder)  # now every process is up: the mailbox's own, the readers, the worker's
        started = _descendants(run.pid)
        assert {"redis-server", "web", "worker", "poll"} <= _roles(started), started
        assert {"dovecot", "pymap"} & _roles(started), started
        run.kill()
        run.wait()
        killed_at = time.monotonic()
        # Each gets SIGTERM from the kernel at once (PR_SET_PDEATHSIG); how soon it ends is its own shutdown
        # (2.3-2.7 s measured on an idle 2-core machine). The bound here is generous so a busy machine does not
        # fail it: what is asserted is that they all end by themselves, not how fast.
        while (left := _still_running(started) + _processes_mentioning(str(folder))) and \
                time.monotonic() - killed_at < 30:
            time.sleep(0.1)
        assert left == [], f"still running 30 s after the kill:\n{left}"
        after = _keepwarm(folder, "inbox", "list", "--json")
        assert after.returncode == 0 and json.loads(after.stdout)[0]["status"] == "processed"
        assert after.stderr == (f"ignoring {folder / 'instance' / RUN_FILE}: the `keepwarm run` that wrote it "
                                f"(pid {run.pid}) is no longer running\n")
    finally:
        _end(run, started)
    shutil.rmtree(folder, ignore_errors=True)


def _descendants(pid: int) -> dict[int, str]:
    """Every process under `pid` (children, theirs, …): pid -> its command line."""
    parents = {}
    for proc in Path("/proc").iterdir():
        stat = _stat(proc.name) if proc.name.isdigit() else None
        if stat:
            parents[int(proc.name)] = int(stat[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child in [p for p, pp in parents.items() if pp == parent]:
            found[child] = _cmdline(child)
            frontier.append(child)
    return found


def _roles(processes: dict[int, str]) -> set[str]:
    """What each process is: the server's program, or the `keepwarm` command a child runs."""
    roles = set()
    for cmdline in processes.values():
        argv = cmdline.split()
        if "service.cli" in argv and argv.index("service.cli") + 1 < len(argv):
            roles.add(argv[argv.index("service.cli") + 1])
        roles.update(name for name in ("redis-server", "dovecot", "pymap") if name in cmdline)
    return roles


def _still_running(processes: dict[int, str]) -> list[str]:
    """Those still running (a zombie has ended: only its entry waits for a parent to read it)."""
    return [f"{pid}: {cmdline}" for pid, cmdline in processes.items()
            if (stat := _stat(str(pid))) and stat[0] != "Z" and _cmdline(pid) == cmdline]


def _stat(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [state, ppid, …]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _end(run: subprocess.Popen, started: dict[int, str]) -> None:
    """After a failed test: nothing we started outlives it."""
    if run.poll() is None:
        run.kill()
        run.wait()
    for line in _still_running(started):
        pid = int(line.split(":", 1)[0])
        os.kill(pid, signal.SIGKILL)


# A parent that starts `sleep` tied to itself, says whether a thread's child would be tied too, then waits.
_PARENT = """
import subprocess, sys, threading
from service.run.devstack import ending_with_this_process
child = subprocess.Popen(["sleep", "120"], preexec_fn=ending_with_this_process())
from_a_thread = []
thread = threading.Thread(target=lambda: from_a_thread.append(ending_with_this_process()))
thread.start()
thread.join()
print(child.pid, from_a_thread == [None], flush=True)
sys.stdin.read()
"""


def test_a_child_tied_to_its_parent_ends_when_the_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    pid, untied_from_a_thread = parent.stdout.readline().split()
    child = {int(pid): _cmdline(int(pid))}
    assert "sleep" in child[int(pid)] and untied_from_a_thread == "True"
    parent.kill()
    parent.wait()
    try:
        wait_until(lambda: _still_running(child) == [], 5)
    finally:
        _end(parent, child)


def _child_env(instance: Path, env: dict) -> dict:
    """An explicit KEEPWARM_IMAP_URL for the private mailbox a `run` started (tests that set every variable)."""
    port = (instance / "devstack" / "imap" / "port").read_text().strip()
    return {**env, "KEEPWARM_IMAP_URL": f"imap://followup%40example.com:keepwarm@127.0.0.1:{port}/INBOX"}


def _eventually_processed(folder: Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = _keepwarm(folder, "inbox", "list", "--json")
        rows = json.loads(done.stdout or "[]")
        if rows and rows[0]["status"] == "processed":
            return True
        time.sleep(0.5)
    return False
