"""compose.yaml describes the topology the scale-out tests run: PostgreSQL, a migration step, two
web processes behind one network alias, three workers (each a scheduler candidate, so exactly one
leads), all on one database and one secret key. Docker is not needed to check it: the file is
parsed and every command is run through the real CLI's ``--help``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COMPOSE.read_text("utf-8"))  # resolves the <<: merge keys
    return dict(data["services"])


def _hub(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if s.get("image", "").startswith("clienthub")}


def _role(service: dict[str, Any]) -> str:
    return str(service.get("command", ["run"])[0])


def test_topology(services: dict[str, dict[str, Any]]) -> None:
    roles = sorted(_role(s) for s in _hub(services).values())
    assert roles == ["db", "sandbox", "web", "web", "worker", "worker", "worker"]
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_every_process_shares_one_database_and_key(services: dict[str, dict[str, Any]]) -> None:
    envs = [s["environment"] for n, s in _hub(services).items() if n != "sandbox"]
    assert len({e["CLIENTHUB_DATABASE_URL"] for e in envs}) == 1
    assert envs[0]["CLIENTHUB_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in envs[0]["CLIENTHUB_DATABASE_URL"]
    assert len({e["CLIENTHUB_SECRET_KEY"] for e in envs}) == 1
    assert ":?" in envs[0]["CLIENTHUB_SECRET_KEY"], "the key must be required, never defaulted"


def test_long_running_processes_wait_for_migrations(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _hub(services).items():
        if _role(svc) in ("web", "worker"):
            deps = svc["depends_on"]
            assert deps["migrate"]["condition"] == "service_completed_successfully", name
            assert deps["db"]["condition"] == "service_healthy", name


def test_webs_share_an_alias_and_workers_stand_for_leader(
    services: dict[str, dict[str, Any]],
) -> None:
    webs = [s for s in _hub(services).values() if _role(s) == "web"]
    assert all("hub" in s["networks"]["default"]["aliases"] for s in webs)
    workers = [s for s in _hub(services).values() if _role(s) == "worker"]
    # No --no-scheduler: every worker is a candidate; the advisory lock elects one leader.
    assert all("--no-scheduler" not in s["command"] for s in workers)
    assert all(s["healthcheck"]["disable"] for s in workers)


def test_every_command_exists_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _hub(services).items():
        if name == "db":
            continue
        command = [str(c) for c in svc["command"]]
        words = [c for c in command if not c.startswith("-")][:2]
        words = words[:2] if words[0] == "db" else words[:1]
        done = subprocess.run(
            [sys.executable, "-m", "hub", *words, "--help"],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (name, done.stderr[-500:])
        for option in (c for c in command if c.startswith("--")):
            assert option in done.stdout, (name, option)


def test_the_image_it_builds_exists() -> None:
    assert (ROOT / "Dockerfile").is_file()
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["clienthub"]' in text


def _compose_cli() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    return docker if probe.returncode == 0 else None


@pytest.mark.skipif(_compose_cli() is None, reason="no docker compose client on this machine")
def test_docker_compose_accepts_the_file() -> None:
    """The client's own validation (no engine needed), wherever the client is installed."""
    docker = _compose_cli()
    assert docker is not None
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "POSTGRES_PASSWORD": "x", "CLIENTHUB_SECRET_KEY": "k"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
