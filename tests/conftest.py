"""Shared fixtures: migrated databases on SQLite and a real PostgreSQL, the app, a live server."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from hub import migrations
from hub.db import make_engine, reset_engines
from tests.pg import TempCluster, free_port

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The PostgreSQL server for this test process (one per xdist worker when none is given)."""
    given = os.environ.get("CLIENTHUB_TEST_PG_URL")
    if given:
        yield given
        return
    cluster = TempCluster()
    url = cluster.start()
    try:
        yield url
    finally:
        cluster.stop()


def _admin_engine(url: str) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated template database; each test gets a copy (CREATE DATABASE … TEMPLATE)."""
    name = f"clienthub_tpl_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine(pg_admin_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


def _fresh_pg(request: pytest.FixtureRequest) -> Iterator[str]:
    admin_url = request.getfixturevalue("pg_admin_url")
    template = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(admin_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    template = request.getfixturevalue("sqlite_template")
    path = tmp_path / "clienthub.db"
    shutil.copyfile(template, path)
    yield f"sqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        yield from _fresh_pg(request)
    else:
        yield from _fresh_sqlite(request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _fresh_sqlite(request, tmp_path)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _fresh_pg(request)


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point ClientHub's settings at the test database (for code that reads get_settings())."""
    monkeypatch.setenv("CLIENTHUB_DATABASE_URL", db_url)
    monkeypatch.setenv("CLIENTHUB_KEY_FILE", str(tmp_path / "clienthub.key"))
    monkeypatch.setenv("CLIENTHUB_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("CLIENTHUB_RETRY_BASE_SECONDS", "0.01")
    # No portal unless a test starts the sandbox and says so.
    monkeypatch.setenv("CLIENTHUB_SANDBOX_ENABLED", "false")
    # No rules unless a test publishes some (the sample costs a second to compile).
    monkeypatch.setenv("CLIENTHUB_INITIAL_RULES_DIR", "")
    monkeypatch.chdir(tmp_path)
    reset_engines()
    yield db_url
    reset_engines()


@pytest.fixture
def engine(env: str) -> Iterator[Engine]:
    eng = make_engine(env)
    yield eng
    eng.dispose()


class LiveServer:
    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("live server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(engine: Engine) -> Iterator[LiveServer]:
    """The real app served by uvicorn on a loopback port, on the test database."""
    from hub.bootstrap import ensure_defaults
    from hub.http.app import create_app
    from hub.settings import get_settings

    settings = get_settings()
    ensure_defaults(engine, settings)
    with LiveServer(create_app(settings, engine)) as server:
        yield server
