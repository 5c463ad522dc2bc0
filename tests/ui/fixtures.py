"""Databases with the sample directory published and one user per role, and the real app served
on loopback. Shared by the UI's integration tests and the browser tests.

Publishing the sample costs seconds (it is checked twice), so it happens once per test session
and backend, in a template database that every test copies.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from hub.db import make_engine, reset_engines
from tests.conftest import LiveServer, _admin_engine
from tests.ui.helpers import seed, serve


@pytest.fixture(scope="session")
def ui_sqlite_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uitpl") / "ui.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    seed(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def ui_pg_template(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    name = f"clienthub_uitpl_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine(pg_admin_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    seed(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    path = tmp_path / "ui.db"
    shutil.copyfile(request.getfixturevalue("ui_sqlite_template"), path)
    return f"sqlite:///{path}"


def _fresh_pg(request: pytest.FixtureRequest) -> Iterator[str]:
    admin_url = request.getfixturevalue("pg_admin_url")
    template = request.getfixturevalue("ui_pg_template")
    name = f"u_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(admin_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ui_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield from _fresh_pg(request)
    else:
        yield _fresh_sqlite(request, tmp_path)


@pytest.fixture
def ui_sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _fresh_sqlite(request, tmp_path)


def _env(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENTHUB_DATABASE_URL", url)
    monkeypatch.setenv("CLIENTHUB_KEY_FILE", str(tmp_path / "clienthub.key"))
    monkeypatch.setenv("CLIENTHUB_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("CLIENTHUB_SANDBOX_ENABLED", "false")
    monkeypatch.setenv("CLIENTHUB_INITIAL_RULES_DIR", "")
    monkeypatch.chdir(tmp_path)
    reset_engines()


@pytest.fixture
def ui_engine(ui_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Both backends."""
    _env(ui_db_url, tmp_path, monkeypatch)
    engine = make_engine(ui_db_url)
    yield engine
    engine.dispose()
    reset_engines()


@pytest.fixture
def ui_sqlite_engine(
    ui_sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """SQLite only (the browser tests: one backend is enough for what a browser adds)."""
    _env(ui_sqlite_url, tmp_path, monkeypatch)
    engine = make_engine(ui_sqlite_url)
    yield engine
    engine.dispose()
    reset_engines()


@pytest.fixture
def ui_server(ui_engine: Engine) -> Iterator[LiveServer]:
    with serve(ui_engine) as server:
        yield server


@pytest.fixture
def ui_sqlite_server(ui_sqlite_engine: Engine) -> Iterator[LiveServer]:
    """For what does not depend on the database engine (forms, roles, the browser)."""
    with serve(ui_sqlite_engine) as server:
        yield server
