"""What README.md tells a newcomer, held to the code.

The first command and `.ci/run` run for real in bash on a fake machine (tools on PATH that
record what they are asked and act like Debian's: a python3 without ensurepip until apt-get
installs python3-venv, apt-get that refuses a non-root user, sudo present or not), so the
decisions the scripts make are checked without a fresh Debian at hand. Every `clienthub …` the
README mentions must be a command of the CLI with the options it shows; job kinds, refusal
texts and Bitrix24 scopes must be the ones the code uses.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from connectors.base import Rejected
from connectors.common import check_secret
from hub.bitrix24.app_setup import SCOPES
from hub.bitrix24.factory import WEBHOOK_SCOPES
from hub.cli import app
from hub.pipeline import DELIVER_JOB

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
BASH = shutil.which("bash") or "/bin/bash"

SHIMS = {
    "id": '[ "$1" = "-u" ] && echo "$FAKE_UID" || echo "uid=$FAKE_UID(user)"',
    "sudo": 'echo "sudo $*" >> "$LOG"; FAKE_ROOT=1 exec "$@"',
    "apt-get": """echo "${DEBIAN_FRONTEND:+DEBIAN_FRONTEND=$DEBIAN_FRONTEND }apt-get $*" >> "$LOG"
if [ "$FAKE_UID" != 0 ] && [ -z "$FAKE_ROOT" ]; then
  echo "E: Could not open lock file /var/lib/dpkg/lock-frontend (13: Permission denied)" >&2
  exit 100
fi
case " $* " in *" python3-venv "*) : > "$VENV_OK";; esac""",
    "python3": """echo "python3 $*" >> "$LOG"
if [ "$1" = "-c" ]; then
  [ -e "$VENV_OK" ] && exit 0
  echo "ModuleNotFoundError: No module named 'ensurepip'" >&2; exit 1
fi
if [ "$1 $2" = "-m venv" ]; then
  [ -e "$VENV_OK" ] || { echo "ensurepip is not available: apt install python3-venv" >&2; exit 1; }
  mkdir -p "$3/bin"
  for tool in python pip clienthub ruff; do
    printf '#!/bin/sh\\necho "venv/%s $*" >> "$LOG"\\n' "$tool" > "$3/bin/$tool"
    chmod +x "$3/bin/$tool"
  done
  exit 0
fi
exit 2""",
}
TOOLS = ("mkdir", "chmod", "ls", "dirname", "env", "cat")  # the rest of a minimal machine


@dataclass
class Machine:
    """A directory with the repository's files the scripts read, and a PATH of fakes."""

    root: Path
    env: dict[str, str]

    @property
    def log(self) -> list[str]:
        path = Path(self.env["LOG"])
        return path.read_text().splitlines() if path.exists() else []

    def bash(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - bash with our own scripts
            [BASH, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def machine(tmp_path: Path, request: pytest.FixtureRequest) -> Machine:
    """``request.param``: (uid, sudo installed, python3-venv installed)."""
    uid, has_sudo, has_venv = getattr(request, "param", (0, False, False))
    bin_dir, tools = tmp_path / "bin", tmp_path / "tools"
    bin_dir.mkdir()
    tools.mkdir()
    for name, body in SHIMS.items():
        if name == "sudo" and not has_sudo:
            continue
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    work = tmp_path / "work"
    (work / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", work / ".ci" / "run")
    venv_ok = tmp_path / "venv-installed"
    if has_venv:
        venv_ok.touch()
    env = {
        "PATH": f"{bin_dir}:{tools}",
        "HOME": str(tmp_path),
        "LOG": str(tmp_path / "log"),
        "VENV_OK": str(venv_ok),
        "FAKE_UID": str(uid),
    }
    return Machine(work, env)


def first_command() -> str:
    """The README's first code block: the command a newcomer pastes."""
    return README.split("```bash\n", 1)[1].split("```", 1)[0].strip()


ROOT_NO_VENV = (0, False, False)
USER_WITH_SUDO = (1000, True, False)
USER_WITHOUT_SUDO = (1000, False, False)
VENV_PRESENT = (1000, False, True)


@pytest.mark.parametrize("machine", [ROOT_NO_VENV], indirect=True)
def test_first_command_as_root_installs_python3_venv_then_runs(machine: Machine) -> None:
    done = machine.bash("-c", first_command())
    assert done.returncode == 0, done.stderr
    assert machine.log == [
        "python3 -c import ensurepip",
        "apt-get update -qq",
        "apt-get install -y -qq python3-venv",
        "python3 -m venv .venv",
        "venv/pip install -c requirements.lock -e .",  # the audited versions, as CI
        "venv/clienthub run",
    ]


@pytest.mark.parametrize("machine", [USER_WITH_SUDO], indirect=True)
def test_first_command_as_a_user_uses_sudo_for_apt_only(machine: Machine) -> None:
    done = machine.bash("-c", first_command())
    assert done.returncode == 0, done.stderr
    apt = [line for line in machine.log if "apt-get" in line]
    assert apt == [
        "sudo apt-get update -qq",
        "apt-get update -qq",
        "sudo apt-get install -y -qq python3-venv",
        "apt-get install -y -qq python3-venv",
    ]
    assert machine.log[-2:] == ["venv/pip install -c requirements.lock -e .", "venv/clienthub run"]
    assert not [line for line in machine.log if line.startswith("sudo venv")]


@pytest.mark.parametrize("machine", [VENV_PRESENT], indirect=True)
def test_first_command_with_venv_support_installs_nothing_from_debian(machine: Machine) -> None:
    done = machine.bash("-c", first_command())
    assert done.returncode == 0, done.stderr
    assert not [line for line in machine.log if "apt-get" in line or "sudo" in line]
    assert machine.log[-1] == "venv/clienthub run"


@pytest.mark.parametrize("machine", [USER_WITHOUT_SUDO], indirect=True)
def test_first_command_without_root_or_sudo_stops_with_apts_reason(machine: Machine) -> None:
    done = machine.bash("-c", first_command())
    assert done.returncode != 0
    assert "Permission denied" in done.stderr
    assert not (machine.root / ".venv").exists()


def _ci_packages() -> list[str]:
    """What .ci/run must install on this machine's real filesystem with PATH hiding dovecot."""
    need = [] if glob.glob("/usr/lib/postgresql/*/bin/initdb") else ["postgresql"]
    need.append("dovecot-imapd")
    if not os.access("/usr/bin/chromium", os.X_OK):
        need.append("chromium")
    return [*need, "python3-venv"]


@pytest.mark.parametrize("machine", [ROOT_NO_VENV, USER_WITH_SUDO], indirect=True)
def test_ci_run_installs_the_debian_packages_then_tests_with_the_lock(machine: Machine) -> None:
    done = machine.bash(".ci/run", "-k", "smoke")
    assert done.returncode == 0, done.stderr
    log = machine.log
    as_user = machine.env["FAKE_UID"] != "0"
    packages = " ".join(_ci_packages())
    update = log.index("apt-get update -qq")
    install = log.index(
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {packages}"
    )
    assert update < install < log.index("python3 -m venv .venv")
    sudo = [line for line in log if line.startswith("sudo ")]
    assert len(sudo) == (2 if as_user else 0), sudo  # apt-get only, and only when not root
    assert all(" apt-get " in f" {line} " for line in sudo)
    assert "venv/python -m pip install -q -e .[test] -c requirements.lock" in log
    assert log[-1] == "venv/python -m pytest -n 2 -q -p no:cacheprovider -k smoke"


@pytest.mark.parametrize("machine", [USER_WITHOUT_SUDO], indirect=True)
def test_ci_run_without_root_or_sudo_says_what_is_missing(machine: Machine) -> None:
    done = machine.bash(".ci/run")
    assert done.returncode == 1
    assert "run as root, or install sudo" in done.stderr and "python3-venv" in done.stderr
    assert not [line for line in machine.log if "apt-get" in line]


# -- every command the README mentions exists, with the options it shows ----------------------

MENTION = re.compile(r"(?<![\w.-])clienthub (?=[a-z0-9])")


def _mentions() -> list[str]:
    """Every ``clienthub …`` in code blocks and in inline code (which may wrap a line), up to
    the end of its line, code span or table cell, a comment or the next command (``;``)."""
    parts = README.split("```")
    for i in range(0, len(parts), 2):  # prose between fences: join wrapped inline code
        parts[i] = re.sub(r"`[^`]+`", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)), parts[i])
    text = "```".join(parts)
    found = []
    for match in MENTION.finditer(text):
        rest = re.split(r"[\n`|;#]", text[match.end() :], maxsplit=1)[0]
        found.append(rest.strip())
    return found


def test_every_clienthub_command_in_the_readme_exists() -> None:
    root = typer.main.get_command(app)  # typer's own click: groups are told by .commands
    mentions = _mentions()
    assert len(mentions) > 30, mentions  # the README is full of them
    for mention in mentions:
        words = mention.split()
        command: Any = root
        path = []
        while hasattr(command, "commands") and words and words[0] in command.commands:
            path.append(words.pop(0))
            command = command.commands[path[-1]]
        assert path, f"`clienthub {mention}`: no such command"
        assert not hasattr(command, "commands") or command.invoke_without_command, (
            f"`clienthub {mention}` names a group, not a command"
        )
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        for word in (w.strip("[]") for w in words):
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"`clienthub {mention}`: no {word}"


# -- facts the troubleshooting and Bitrix24 sections state -------------------------------------


def test_troubleshooting_names_the_real_job_kind_and_refusal_texts() -> None:
    assert DELIVER_JOB == "deliver.appeal" and f"dead `{DELIVER_JOB}` jobs" in README
    assert "bitrix24.deliver" not in README and "bad secret" not in README
    with pytest.raises(Rejected) as refused:
        check_secret("right", "wrong", "VK secret")  # the VK connector's wording
    assert refused.value.status == 403 and f"403 `{refused.value.reason}`" in README
    hooks = (ROOT / "hub" / "http" / "hooks.py").read_text("utf-8")
    assert 'f"unknown source {source!r} for channel {channel!r}"' in hooks
    source, channel = "landing", "form"
    assert f"404 `unknown source {source!r} for channel {channel!r}`" in README
    for quoted in ("Mango signature or vpbx_api_key is wrong", "URL token (?token=)",
                   "X-Telegram-Bot-Api-Secret-Token"):  # fmt: skip
        assert quoted in README
        assert any(quoted in p.read_text("utf-8") for p in (ROOT / "connectors").rglob("*.py"))


def _scopes(text: str) -> set[str]:
    return {s for s in re.split(r"[\s,`]+", text) if s}


def test_bitrix24_scopes_are_the_ones_the_code_calls_for_everywhere() -> None:
    webhook = re.findall(r"Inbound webhook\*.*?scopes ((?:`\w+`,?\s*)+)", README, re.S)
    assert len(webhook) == 2  # the Bitrix24 section and Production step 2
    for found in webhook:
        assert _scopes(found.replace("\n", " ").strip()) == set(WEBHOOK_SCOPES), found
    app_scopes = set(SCOPES.split(","))
    assert "task" in app_scopes  # the missed call's "call back" task (tasks.task.add)
    for text in (README, (ROOT / "docs" / "bitrix24_app.md").read_text("utf-8")):
        listed = re.findall(r"`(crm, imopenlines[^`]*)`", text)
        assert listed and all(_scopes(x) == app_scopes for x in listed), listed
