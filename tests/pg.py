"""A throwaway PostgreSQL cluster from Debian's binaries, or the server in CLIENTHUB_TEST_PG_URL.

Never skipped: a test that needs PostgreSQL fails when neither is available.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def find_bin_dir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL is needed for these tests: set CLIENTHUB_TEST_PG_URL, or install Debian's "
        "postgresql package (.ci/run does: apt-get install -y postgresql)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    """initdb + pg_ctl in a temporary directory; as root, run as the ``postgres`` user."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # benchmarks measure with fsync on, as production runs
        self.bin = find_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="clienthub-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(args[:2])} failed: {result.stderr.strip()[-800:]}"
            )

    def start(self) -> str:
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D", str(self.data),
            "-U", "postgres",
            "--auth=trust",
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def migrated_database(self, admin_url: str, name: str) -> str:
        """A new database ``name`` on this cluster at the head revision; returns its URL."""
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        from hub import migrations
        from hub.db import make_engine

        engine = make_engine(admin_url)
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        migrations.upgrade(url)
        return url
