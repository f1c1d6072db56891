"""The `keepwarm` command, run as a user would (a subprocess with KEEPWARM_* in its environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.run.devstack import free_port
from tests.mail import recap

pytestmark = pytest.mark.slow  # every test runs the `keepwarm` command in a process of its own
CORPUS = Path(__file__).parents[1] / "corpus" / "intake"
CONTRACT = {"file", "message_id", "accepted", "ignored_reason", "rep", "customers", "outcome", "cause", "reasons",
            "recontact_on", "decision_makers", "note", "language", "confidence"}


@pytest.fixture
def keepwarm(settings, engine, reps):
    env = {**os.environ, "KEEPWARM_DATABASE_URL": settings.database_url,
           "KEEPWARM_INTAKE_ADDRESS": settings.intake_address, "KEEPWARM_INTERNAL_DOMAINS": "acme.example",
           "KEEPWARM_INSTANCE_DIR": str(settings.instance_dir), "KEEPWARM_SECRET_KEY": "test-secret-0123456789abcdef"}
    if settings.imap_url:
        env["KEEPWARM_IMAP_URL"] = settings.imap_url

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120, cwd=settings.instance_dir)
        if check and done.returncode != 0:
            raise AssertionError(f"keepwarm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


def test_parse_prints_one_contract_object_per_file_and_goes_on_after_an_unreadable_one(keepwarm, tmp_path):
    good = tmp_path / "recap.eml"
    good.write_bytes(recap(1))
    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(recap(2, sender="x@elsewhere.example"))
    done = keepwarm("parse", str(good), str(tmp_path / "missing.eml"), str(stranger))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    assert CONTRACT <= set(lines[0]) and lines[0]["accepted"] is True
    assert lines[0]["rep"] == {"email": "tom.baker@acme.example", "name": "Tom Baker"}
    assert lines[0]["customers"] == [{"email": "jane@globex.example", "name": "Jane"}]
    assert set(lines[1]) == {"file", "error"} and lines[1]["file"].endswith("missing.eml")
    assert lines[2]["ignored_reason"] == "unknown_sender" and CONTRACT <= set(lines[2])


def test_parse_changes_nothing_and_ingest_stores(keepwarm, tmp_path):
    path = tmp_path / "recap.eml"
    path.write_bytes(recap(1))
    keepwarm("parse", str(path))
    assert json.loads(keepwarm("inbox", "list", "--json").stdout) == []
    assert "processed" in keepwarm("ingest", str(path), str(path)).stdout
    rows = json.loads(keepwarm("inbox", "list", "--json").stdout)
    assert [(r["status"], r["reason"]) for r in rows] == [("ignored", "duplicate"), ("processed", None)]
    assert {"id", "message_id", "status", "reason", "received_at"} <= set(rows[0])
    only_ignored = json.loads(keepwarm("inbox", "list", "--json", "--status", "ignored").stdout)
    assert len(only_ignored) == 1


def test_reps_add_and_list_and_clear_errors(keepwarm):
    keepwarm("reps", "add", "New.Rep@acme.example", "--name", "New Rep", "--timezone", "Europe/Rome",
             "--alias", "nr@acme.example")
    listed = json.loads(keepwarm("reps", "list", "--json").stdout)
    assert {"email": "new.rep@acme.example", "name": "New Rep", "timezone": "Europe/Rome", "active": True,
            "aliases": ["nr@acme.example"]} in listed
    bad = keepwarm("reps", "add", "x@acme.example", "--name", "X", "--timezone", "Nowhere/Land", check=False)
    assert bad.returncode != 0 and "IANA" in bad.stderr and "Traceback" not in bad.stderr


def test_poll_once_reads_the_mailbox(keepwarm, imap, mailbox_user):
    imap.append("INBOX", recap(7))
    assert "fetched 1, read 1, failed 0, moved 1" in keepwarm("poll", "--once").stdout
    assert json.loads(keepwarm("inbox", "list", "--json").stdout)[0]["status"] == "processed"


def test_every_subcommand_has_help(keepwarm):
    for args in (["--help"], ["parse", "--help"], ["ingest", "--help"], ["reps", "add", "--help"],
                 ["reps", "list", "--help"], ["poll", "--help"], ["worker", "--help"], ["inbox", "list", "--help"],
                 ["run", "--help"], ["web", "--help"], ["db", "upgrade", "--help"], ["demo", "--help"]):
        assert "Usage:" in keepwarm(*args).stdout


def test_a_database_without_tables_gets_advice_not_a_traceback(keepwarm, tmp_path):
    done = subprocess.run([sys.executable, "-m", "service.cli", "inbox", "list"], capture_output=True, text=True,
                          env={**os.environ, "KEEPWARM_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db",
                               "KEEPWARM_INSTANCE_DIR": str(tmp_path)}, cwd=tmp_path)
    assert done.returncode != 0 and "keepwarm db upgrade" in done.stderr


def test_ingest_reports_a_line_per_file_never_a_traceback(keepwarm, tmp_path, engine):
    from tests.integration.test_recording import with_nul

    raw_nul, qp_nul, missing = tmp_path / "raw-nul.eml", tmp_path / "qp-nul.eml", tmp_path / "missing.eml"
    raw_nul.write_bytes(with_nul(1, raw=True))
    qp_nul.write_bytes(with_nul(2))
    done = keepwarm("ingest", str(raw_nul), str(qp_nul), str(missing), check=False)
    assert "Traceback" not in done.stdout + done.stderr and done.returncode == 1
    assert done.stdout.splitlines() == [f"{raw_nul}: processed", f"{qp_nul}: processed",
                                        f"{missing}: error ([Errno 2] No such file or directory: '{missing}')"]


def test_a_database_that_does_not_answer_is_one_line_not_a_traceback(tmp_path):
    url = f"postgresql+psycopg://keepwarm@127.0.0.1:{free_port()}/keepwarm"
    done = subprocess.run([sys.executable, "-m", "service.cli", "inbox", "list"], capture_output=True, text=True,
                          env={**os.environ, "KEEPWARM_DATABASE_URL": url, "KEEPWARM_INSTANCE_DIR": str(tmp_path)},
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: the database does not answer:") and len(done.stderr.splitlines()) == 1


# -- a second terminal: no KEEPWARM_* variable, the stack of a `keepwarm run` found through its run file --------
def _typed(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    """`keepwarm ARGS` typed in a new terminal in `folder`: no KEEPWARM_* variable but `variables`."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEEPWARM_")}, **variables}
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, cwd=folder, capture_output=True,
                          text=True, timeout=60)


def _write_run_file(folder: Path, pid: int, started: str | None, database_url: str) -> Path:
    """The file a `keepwarm run` with this pid would keep in the default instance folder under `folder`."""
    from service.settings import RUN_FILE, RunningStack

    path = folder / "instance" / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RunningStack(path, pid, started, {"KEEPWARM_DATABASE_URL": database_url}).to_json())
    return path


def test_a_missing_setting_is_one_line_saying_what_to_do_and_debug_shows_the_traceback(tmp_path):
    done = _typed(tmp_path, "demo")
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("Error: KEEPWARM_IMAP_URL is not set: start `keepwarm run` (or `make run`) in "
                                  "another terminal from this folder, or set it, e.g. KEEPWARM_IMAP_URL=imap://")
    debug = _typed(tmp_path, "--debug", "demo")
    assert debug.returncode == 1 and debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.rstrip().endswith("SettingsError: KEEPWARM_IMAP_URL is not set")


@pytest.mark.parametrize("variable, value, says", [
    ("KEEPWARM_POLL_INTERVAL", "soon", "KEEPWARM_POLL_INTERVAL: 'soon' is not a whole number"),
    ("KEEPWARM_TIMEZONE", "Rome", "KEEPWARM_TIMEZONE: 'Rome' is not an IANA time zone (e.g. Europe/Rome)"),
    ("KEEPWARM_DATABASE_URL", "keepwarm.db", "KEEPWARM_DATABASE_URL: Could not parse SQLAlchemy URL"),
    ("KEEPWARM_DATABASE_URL", "postgres://db/keepwarm", "KEEPWARM_DATABASE_URL: Can't load plugin"),
    ("KEEPWARM_REDIS_URL", "localhost:6379", "KEEPWARM_REDIS_URL: Redis URL must specify one of"),
])
def test_a_value_that_cannot_work_is_one_line_naming_its_variable(tmp_path, variable, value, says):
    done = _typed(tmp_path, "inbox", "list", **{variable: value})
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"Error: {says}")
    assert "Traceback" in _typed(tmp_path, "--debug", "inbox", "list", **{variable: value}).stderr


def test_a_mailbox_that_does_not_answer_is_one_line_naming_its_variable(tmp_path, settings):
    url = f"imap://followup%40acme.example:secret@127.0.0.1:{free_port()}/INBOX"
    done = _typed(tmp_path, "demo", KEEPWARM_IMAP_URL=url, KEEPWARM_DATABASE_URL=settings.database_url)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("Error: KEEPWARM_IMAP_URL: the mailbox imap://followup@acme.example@127.0.0.1:")
    assert "secret" not in done.stderr


def test_commands_use_a_running_stacks_urls_where_their_variables_are_unset(tmp_path, database_url):
    from service.settings import process_started

    # Stand-in for a running `keepwarm run`: this test's own process, which is alive, with the test's database.
    run_file = _write_run_file(tmp_path, os.getpid(), process_started(os.getpid()), database_url)
    done = _typed(tmp_path, "inbox", "list", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr
    assert done.stderr == f"using the stack `keepwarm run` started at {run_file}\n"
    # A variable that is set wins over the file; nothing taken from it, nothing said about it.
    own = _typed(tmp_path, "inbox", "list", KEEPWARM_DATABASE_URL=f"sqlite:///{tmp_path}/own.db")
    assert own.stderr == "Error: the database has no tables yet: run `keepwarm db upgrade`\n"


@pytest.mark.parametrize("left_by", ["a process that has ended", "a later process given the same pid", "junk"])
def test_a_run_file_left_by_a_run_that_has_ended_is_ignored_with_a_note(tmp_path, database_url, left_by):
    ended = subprocess.Popen(["true"])
    ended.wait()
    if left_by == "junk":
        run_file = tmp_path / "instance" / "run.json"
        run_file.parent.mkdir()
        run_file.write_text("{not json")
    else:
        pid, started = (ended.pid, None) if left_by.startswith("a process") else (os.getpid(), "0")
        run_file = _write_run_file(tmp_path, pid, started, database_url)
    done = _typed(tmp_path, "inbox", "list")
    pid = json.loads(run_file.read_text())["pid"] if left_by != "junk" else 0
    assert done.stderr.splitlines() == [
        f"ignoring {run_file}: the `keepwarm run` that wrote it (pid {pid}) is no longer running",
        "Error: the database has no tables yet: run `keepwarm db upgrade`"]  # its database was not used
    assert done.returncode == 1
