"""compose.yaml describes the topology the scale-out tests run: PostgreSQL, a migration step, two
web processes behind one network alias, three workers (each a scheduler candidate, so exactly one
leads), all on one database and one secret key. Docker is not needed to check it: the file is
parsed and every command is run through the real CLI's ``--help``. The Dockerfile and
.dockerignore are read the same way: locked versions, a non-root user owning every volume mount
point, no local state (.venv, .git, databases, the key file) in the build context."""

from __future__ import annotations

import json
import os
import re
import shlex
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


# -- the Dockerfile, read statically (no Docker engine on the test machines) --------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _shell_commands(run: str) -> list[list[str]]:
    """A RUN line's simple commands (split on && ; ||), each as its words."""
    words = shlex.split(run)
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "||"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _runtime_user() -> str:
    users = [args for word, args in _instructions() if word == "USER"]
    assert users, "the image must switch to a non-root USER"
    return users[-1].split(":")[0]


def _before_user() -> list[list[str]]:
    """Every simple command the build runs as root, before the last USER."""
    found: list[list[str]] = []
    for word, args in _instructions():
        if word == "USER":
            break
        if word == "RUN":
            found += _shell_commands(args)
    return found


def _mount_targets(services: dict[str, dict[str, Any]]) -> set[str]:
    targets = set()
    for svc in _hub(services).values():
        for volume in svc.get("volumes", []):
            target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
            targets.add(target.rstrip("/"))
    for word, args in _instructions():
        if word == "VOLUME":
            targets.update(v.rstrip("/") for v in json.loads(args))
    return targets


def _covers(parent: str, path: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def test_the_image_installs_the_locked_versions() -> None:
    """The same audited versions as CI (.ci/run): requirements.lock as pip's constraints."""
    copied = [args.split()[:-1] for word, args in _instructions() if word == "COPY"]
    assert any("requirements.lock" in sources for sources in copied)
    installs = [c for c in _before_user() if c[:2] == ["pip", "install"]]
    assert installs, "the image installs ClientHub with pip"
    for command in installs:
        assert "-c" in command and command[command.index("-c") + 1] == "requirements.lock", command


def test_every_mounted_volume_exists_in_the_image_owned_by_the_runtime_user(
    services: dict[str, dict[str, Any]],
) -> None:
    """Docker gives a fresh named volume the ownership of the image's directory at the mount
    point, and root's when the image has none: then the non-root processes cannot write there
    (recordings and attachments in /data/files)."""
    user = _runtime_user()
    assert user not in ("root", "0")
    commands = _before_user()
    assert any(c[0] == "useradd" and c[-1] == user for c in commands), "the user is created"
    made = [arg for c in commands if c[0] == "mkdir" for arg in c[1:] if not arg.startswith("-")]
    owned: list[tuple[str, bool]] = []  # (path, recursive)
    for c in commands:
        if c[0] != "chown":
            continue
        args = [a for a in c[1:] if not a.startswith("-")]
        if args and args[0].split(":")[0] == user:
            recursive = any(a in ("-R", "--recursive") for a in c[1:])
            owned += [(p.rstrip("/"), recursive) for p in args[1:]]
    targets = _mount_targets(services)
    assert "/data/files" in targets, targets  # compose.yaml's file store volume
    for target in sorted(targets):
        assert any(_covers(target, m) for m in made), f"{target} is not created in the image"
        assert any(p == target or (r and _covers(p, target)) for p, r in owned), (
            f"{target} is not owned by {user}"
        )


def test_the_image_is_checked_and_keeps_its_data_in_the_volume() -> None:
    env = " ".join(args for word, args in _instructions() if word == "ENV")
    assert "CLIENTHUB_FILES_DIR=/data/files" in env  # not /app, which the user cannot write
    assert any(word == "HEALTHCHECK" and "/healthz" in args for word, args in _instructions())
    assert any(word == "FROM" and args.startswith("python:3.11-slim") for word, args in
               _instructions())  # fmt: skip


def _ignore_patterns() -> list[str]:
    path = ROOT / ".dockerignore"
    assert path.is_file(), "a .dockerignore keeps .venv, .git and local data out of the build"
    lines = (ln.strip() for ln in path.read_text("utf-8").splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _glob(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: ``**`` any number of directories, ``*`` and ``?`` within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: a pattern matching the path or one of its
    parent directories excludes it; the last matching pattern wins (``!`` re-includes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        rx = _glob(raw.lstrip("!").strip("/"))
        if any(rx.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    patterns = _ignore_patterns()
    for local in (".venv/bin/python", ".git/HEAD", "clienthub.db", "clienthub.db-wal",
                  "clienthub-sandbox.db", "clienthub.key", ".env", "hub/__pycache__/cli.pyc",
                  "test-results/screenshots/x.png", ".hypothesis/examples/x",
                  "clienthub.egg-info/PKG-INFO"):  # fmt: skip
        assert _ignored(local, patterns), local
    copied = [src for word, args in _instructions() if word == "COPY" for src in args.split()[:-1]]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is copied but .dockerignore drops it"
    for kept in ("hub/cli.py", "web/templates/base.html", "routing_rules/sample/rules.yaml"):
        assert not _ignored(kept, patterns), kept


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
