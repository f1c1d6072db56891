"""`keepwarm run` (what `make run` starts): everything up, a demo email read, everything down on SIGTERM."""

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


def run_demo_round_trip(command: list[str], prefix: str) -> str:
    """`keepwarm run` (started as `command`) up, `keepwarm demo` read, SIGTERM, nothing left; returns its output."""
    tmp_path = Path(tempfile.mkdtemp(prefix=prefix))  # see the dovecot fixture: not under pytest's temp root
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")}
    env.update(KEEPWARM_INSTANCE_DIR=str(tmp_path), KEEPWARM_POLL_INTERVAL="30")
    port = free_port()
    run = subprocess.Popen([sys.executable, *command, "run", "--port", str(port)], env=env, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while _healthz(port) != 200:
            assert run.poll() is None, run.stdout.read()
            assert time.monotonic() < deadline, "no healthy /healthz within 60s"
            time.sleep(0.3)
        demo = subprocess.run([sys.executable, "-m", "service.cli", "demo"], env=_child_env(tmp_path, env),
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert demo.returncode == 0, demo.stderr
        assert _eventually_processed(tmp_path, env)
    finally:
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert _processes_mentioning(str(tmp_path)) == []
    shutil.rmtree(tmp_path, ignore_errors=True)
    return output


@pytest.mark.slow
@pytest.mark.skipif(dovecot_binary() is None, reason="dovecot is not installed")
def test_run_starts_everything_reads_a_demo_mail_and_stops_cleanly():
    output = run_demo_round_trip(["-m", "service.cli"], "kw-run-")
    assert "Demo mailbox" in output and "login followup@example.com" in output and "BCC address" in output


def _child_env(instance: Path, env: dict) -> dict:
    """The demo command talks to the private mailbox `run` started: read its URL back from the folder."""
    port = (instance / "devstack" / "imap" / "port").read_text().strip()
    return {**env, "KEEPWARM_IMAP_URL": f"imap://followup%40example.com:keepwarm@127.0.0.1:{port}/INBOX"}


def _eventually_processed(instance: Path, env: dict, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-m", "service.cli", "inbox", "list", "--json"], env=env,
                              cwd=instance, capture_output=True, text=True, timeout=60)
        rows = json.loads(done.stdout or "[]")
        if rows and rows[0]["status"] == "processed":
            return True
        time.sleep(0.5)
    return False
