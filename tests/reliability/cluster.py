"""The scale-out topology of compose.yaml without Docker: real ``clienthub`` processes on loopback.

One sandbox Bitrix24 portal (``clienthub sandbox``, its own SQLite file), web processes
(``clienthub web``) and worker processes (``clienthub worker``, each a scheduler candidate), all
on one PostgreSQL database with one Fernet key, exactly as the compose services are configured.
Logs go to files (a full pipe would stall a process); tests and benchmarks kill, restart and
inspect the processes by name.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.pg import free_port

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RULES = ROOT / "routing_rules" / "sample"
# The sandbox portal's built-in local application (hub/settings.py: sandbox_app_*).
SANDBOX_APP_ID, SANDBOX_APP_SECRET = "local.clienthub.sandbox", "sandbox-app-secret"


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    wrap: list[str] = field(default_factory=list)  # e.g. an unshare/mount prefix

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*self.wrap, *self.argv],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.popen is not None
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """Sandbox + ``webs`` web processes + ``workers`` worker processes on one database."""

    def __init__(
        self,
        db_url: str,
        workdir: Path,
        *,
        rate_burst: int = 50,
        rate_per_second: float = 5.0,
        lease_seconds: float = 3.0,
        rules: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = Fernet.generate_key().decode()
        self.procs: dict[str, Proc] = {}
        self.sandbox_db = self.dir / "portal.db"
        self.sandbox_port = free_port()
        self.rate = (rate_burst, rate_per_second)
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CLIENTHUB_") and k not in ("PYTHONPATH",)
        }
        self.base_env.update(
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            CLIENTHUB_DATABASE_URL=db_url,
            CLIENTHUB_SECRET_KEY=self.key,
            CLIENTHUB_LOG_LEVEL="WARNING",
            CLIENTHUB_LOG_JSON="true",
            CLIENTHUB_SANDBOX_ENABLED="false",
            CLIENTHUB_SANDBOX_DB=str(self.sandbox_db),
            CLIENTHUB_SANDBOX_RATE_BURST=str(rate_burst),
            CLIENTHUB_SANDBOX_RATE_PER_SECOND=str(rate_per_second),
            CLIENTHUB_B24_WEBHOOK_URL=f"{self.sandbox_url}/rest/1/sandbox/",
            # ClientHub paces itself to the portal's bucket, as an installation is told to.
            CLIENTHUB_B24_RATE_BURST=str(rate_burst),
            CLIENTHUB_B24_RATE_PER_SECOND=str(rate_per_second),
            CLIENTHUB_B24_TIMEOUT_SECONDS="10",
            CLIENTHUB_PUBLIC_URL="https://hub.example",
            CLIENTHUB_JOB_LEASE_SECONDS=str(lease_seconds),
            CLIENTHUB_JOB_POLL_SECONDS="0.05",
            CLIENTHUB_RETRY_BASE_SECONDS="0.2",
            CLIENTHUB_RETRY_MAX_DELAY_SECONDS="2",
            CLIENTHUB_INITIAL_RULES_DIR=str(SAMPLE_RULES) if rules else "",
            CLIENTHUB_INITIAL_SOURCES='["form/site"]',
            CLIENTHUB_FILES_DIR=str(self.dir / "files"),
            CLIENTHUB_KEY_FILE=str(self.dir / "unused.key"),
            CLIENTHUB_ALLOW_PRIVATE_FETCH="true",  # the fake platforms are on loopback
        )
        self.base_env.update(env or {})

    # -- processes ---------------------------------------------------------------------------
    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "hub", *args]

    def add(self, name: str, argv: list[str], *, port: int | None = None, **env: str) -> Proc:
        proc = Proc(name, argv, {**self.base_env, **env}, self.dir / f"{name}.log", port)
        self.procs[name] = proc
        return proc

    def start_sandbox(self) -> Proc:
        argv = self._python(
            "sandbox", "--port", str(self.sandbox_port), "--db", str(self.sandbox_db),
            "--seed", str(SAMPLE_RULES),
        )  # fmt: skip
        proc = self.add("sandbox", argv, port=self.sandbox_port)
        proc.start()
        self.wait_http(proc)
        return proc

    def start_web(self, name: str) -> Proc:
        proc = self.procs.get(name)
        if proc is None:
            port = free_port()
            proc = self.add(name, self._python("web", "--port", str(port)), port=port)
        proc.start()
        return proc

    def start_worker(self, name: str, *, wrap: list[str] | None = None, **env: str) -> Proc:
        proc = self.procs.get(name)
        if proc is None:
            # INFO: the tests read "worker started" and "became scheduler leader" from the log.
            env = {"CLIENTHUB_LOG_LEVEL": "INFO", **env}
            proc = self.add(name, self._python("worker", "--threads", "1"), **env)
        if wrap is not None:
            proc.wrap = wrap
        proc.start()
        return proc

    def start(self, *, webs: int = 2, workers: int = 3) -> None:
        """Migrations first (``clienthub db upgrade``, the compose ``migrate`` service), then
        the long-running processes, as compose orders them."""
        self.start_sandbox()
        done = subprocess.run(  # noqa: S603
            self._python("db", "upgrade"), env=self.base_env, cwd=ROOT, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        for i in range(webs):
            self.start_web(f"web{i + 1}")
        for i in range(workers):
            self.start_worker(f"worker{i + 1}")
        for p in self.webs:
            self.wait_http(p)
        for p in self.workers:
            self.wait_log(p, "worker started")

    @property
    def webs(self) -> list[Proc]:
        return [p for n, p in sorted(self.procs.items()) if n.startswith("web")]

    @property
    def workers(self) -> list[Proc]:
        return [p for n, p in sorted(self.procs.items()) if n.startswith("worker")]

    def wait_http(self, proc: Proc, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited: {proc.log_text()[-3000:]}")
            try:
                if httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{proc.name} did not answer /healthz: {proc.log_text()[-3000:]}")

    def wait_log(self, proc: Proc, needle: str, timeout: float = 90.0, *, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in proc.log_text()[after:]:
                return
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited: {proc.log_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{proc.name} never logged {needle!r}: {proc.log_text()[-3000:]}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.signal(sig)
        proc.wait(30)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            if proc.wait(max(0.1, deadline - time.monotonic())) is None:
                proc.signal(signal.SIGKILL)
                proc.wait(10)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the sandbox portal --------------------------------------------------------------------
    def app_env(self) -> dict[str, str]:
        """Settings that make the processes use the sandbox's local application (telephony
        registers calls with the app's tokens); harmless until ``install_app`` stores tokens."""
        return {
            "CLIENTHUB_B24_CLIENT_ID": SANDBOX_APP_ID,
            "CLIENTHUB_B24_CLIENT_SECRET": SANDBOX_APP_SECRET,
            "CLIENTHUB_B24_OAUTH_URL": f"{self.sandbox_url}/oauth/token/",
            # The portal cannot download from https://hub.example: recordings go as uploads.
            "CLIENTHUB_RECORDING_DELIVERY": "upload",
        }

    def install_app(self, engine: Any) -> None:
        """ClientHub installed into the sandbox as its local application: the portal's install
        payload, its tokens stored encrypted with the cluster's key (the caller's settings)."""
        from hub.bitrix24.oauth import parse_install
        from hub.db import session_scope
        from hub.settings import get_settings
        from hub.storage import b24_tokens

        body = {"client_id": SANDBOX_APP_ID, "client_secret": SANDBOX_APP_SECRET}
        payload = httpx.post(f"{self.sandbox_url}/_sandbox/apps", json=body, timeout=10).json()
        with session_scope(engine) as s:
            b24_tokens.save(s, parse_install(payload), get_settings())

    def telephony(self) -> list[dict[str, Any]]:
        """The calls the portal registered, with their attached records."""
        return httpx.get(f"{self.sandbox_url}/_sandbox/telephony", timeout=10).json()["calls"]

    def faults(self, **faults: Any) -> dict[str, Any]:
        return httpx.post(f"{self.sandbox_url}/_sandbox/faults", json=faults, timeout=10).json()

    def portal(self) -> PortalRecord:
        return PortalRecord.read(self.sandbox_db)


@dataclass
class PortalRecord:
    """What the sandbox portal holds, read from its SQLite file (WAL: readers never block it)."""

    items: list[dict[str, Any]]
    comments: list[dict[str, Any]]
    calls: Counter[str]  # top-level requests by method
    notices: int = 0  # escalation notifications the portal received
    notice_requests: int = 0  # the requests that carried them (batches count once)

    @classmethod
    def read(cls, path: Path) -> PortalRecord:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            items = [
                {"id": r[0], "type": r[1], "origin": r[2]}
                for r in conn.execute("SELECT id, entity_type_id, origin_id FROM items")
            ]
            comments = [
                {"id": r[0], "entity_id": r[1], **json.loads(r[2])}
                for r in conn.execute("SELECT id, entity_id, data FROM comments")
            ]
            calls = Counter(
                m for (m,) in conn.execute("SELECT method FROM calls WHERE parent IS NULL")
            )
            notices, carriers = conn.execute(
                "SELECT count(*), count(DISTINCT coalesce(parent, -id)) FROM calls "
                "WHERE method = 'im.notify.system.add'"
            ).fetchone()
        finally:
            conn.close()
        return cls(items, comments, calls, int(notices), int(carriers))

    def of_type(self, entity_type_id: int) -> list[dict[str, Any]]:
        return [i for i in self.items if i["type"] == entity_type_id]

    def comment_appeals(self) -> Counter[int]:
        """Appeal id -> how many comments carry its marker (``ClientHub #id``)."""
        import re

        found: Counter[int] = Counter()
        for c in self.comments:
            for m in re.finditer(r"ClientHub #(\d+)(?!\d)", str(c.get("COMMENT", ""))):
                found[int(m.group(1))] += 1
        return found


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    every: float = 0.5,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> float:
    """Poll ``check`` until true; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(every)
    detail = f": {explain()}" if explain else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}{detail}")


def flatten(rows: Iterable[Iterable[Any]]) -> list[Any]:
    return [x for row in rows for x in row]
