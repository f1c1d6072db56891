"""docker-compose.yml: valid against the Compose specification, and every command exists in our CLI.

There is no Docker engine on our machines, so the file is never run here; this is what can be checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML  # check-jsonschema's own YAML reader

from service.cli import main

ROOT = Path(__file__).parents[2]
COMPOSE = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


@pytest.mark.slow
def test_compose_file_follows_the_compose_specification():
    done = subprocess.run([Path(sys.executable).parent / "check-jsonschema", "--builtin-schema",
                           "vendor.compose-spec", str(ROOT / "docker-compose.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_keepwarm_service_command_exists():
    for name, service in COMPOSE["services"].items():
        command = service.get("command") or []
        if command[:1] == ["keepwarm"]:
            result = CliRunner().invoke(main, [*command[1:], "--help"], catch_exceptions=False)
            assert result.exit_code == 0, f"{name}: keepwarm {' '.join(command[1:])} is not a command"
        elif command[:1] == ["gunicorn"]:
            module, _, attribute = command[-1].partition(":")
            assert module == "service.wsgi" and attribute == "app"


def test_production_settings_are_there():
    services = COMPOSE["services"]
    assert "--appendonly" in services["redis"]["command"] and "noeviction" in services["redis"]["command"]
    assert int(services["worker"]["stop_grace_period"].rstrip("s")) > 120  # longer than a send job's timeout
    assert services["mailcatcher"]["profiles"] == ["dev"]
    assert all("healthcheck" in services[name] for name in ("web", "worker", "redis", "postgres"))
    assert "KEEPWARM_SECRET_KEY" in (ROOT / ".env.example").read_text()
