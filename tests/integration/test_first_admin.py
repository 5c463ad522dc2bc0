"""The first start tells the newcomer how to log in: `admin` with a random password, printed
once in the banner; later starts create nothing; `off` creates nobody; processes starting
together create exactly one admin. Both backends (the race matters on PostgreSQL)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from hub import bootstrap
from hub.cli import app, banner, make_server
from hub.db import session_scope
from hub.models import AuditEntry, ChannelSource, RuleSetVersion, User
from hub.settings import Settings, get_settings
from hub.ui.security import verify_password
from tests.helpers import count
from tests.pg import free_port

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"


def _settings(**values: Any) -> Settings:
    return Settings(sandbox_enabled=True, initial_rules_dir="", **values)


def _users(engine: Engine) -> list[User]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(User)).scalars())


def test_first_start_creates_one_admin_and_the_banner_shows_the_password(engine: Engine) -> None:
    settings = _settings()
    first = bootstrap.ensure_first_admin(engine, settings)
    assert first.created and first.password and len(first.password) >= 20
    [user] = _users(engine)
    assert (user.login, user.role, user.enabled) == ("admin", "admin", True)
    assert verify_password(user.password_hash, first.password)
    assert first.password not in user.password_hash
    [entry] = _audit(engine)
    assert (entry.actor, entry.action, entry.object_id) == ("system", "user.add", "admin")
    assert first.password not in str(entry.details)

    text = banner(settings, "0.0.0.0", 8123, first)
    assert first.password in text and "clienthub users passwd admin" in text
    for where in (
        "http://127.0.0.1:8123/ui/",
        "http://127.0.0.1:8123/sandbox",
        "http://127.0.0.1:8123/hooks/{channel}/{source}",
        "http://127.0.0.1:8123/api/appeals",
        "http://127.0.0.1:8123/readyz",
        "clienthub demo",
    ):
        assert where in text, where

    again = bootstrap.ensure_first_admin(engine, settings)
    assert not again.created and again.password is None and again.users == 1
    assert len(_users(engine)) == 1 and len(_audit(engine)) == 1
    later = banner(settings, "127.0.0.1", 8123, again)
    assert first.password not in later
    assert "clienthub users add" in later and "clienthub users passwd" in later


def test_off_creates_nobody_and_says_how(engine: Engine) -> None:
    settings = _settings(first_admin="off")
    first = bootstrap.ensure_first_admin(engine, settings)
    assert not first.created and _users(engine) == []
    text = banner(settings, "127.0.0.1", 8000, first)
    assert "CLIENTHUB_FIRST_ADMIN=off" in text and "clienthub users add admin" in text


def test_a_password_from_the_environment_is_used_and_not_printed(engine: Engine) -> None:
    with pytest.raises(bootstrap.FirstAdminError, match="10"):  # too short: refuse to start
        bootstrap.ensure_first_admin(engine, _settings(first_admin_password="short"))
    assert _users(engine) == []
    settings = _settings(first_admin_password="compose-secret-42")
    first = bootstrap.ensure_first_admin(engine, settings)
    assert first.created and first.from_env and first.password is None
    [user] = _users(engine)
    assert verify_password(user.password_hash, "compose-secret-42")
    assert "compose-secret-42" not in banner(settings, "127.0.0.1", 8000, first)


def test_an_existing_user_means_no_admin_is_made(engine: Engine) -> None:
    from hub.storage import users as users_store

    with session_scope(engine) as s:
        users_store.create(s, login="anna", role="editor", password_hash="x")
    assert not bootstrap.ensure_first_admin(engine, _settings()).created
    assert [u.login for u in _users(engine)] == ["anna"]


def test_processes_starting_together_create_exactly_one_admin(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both see an empty users table before either writes (the barrier makes the race certain);
    the unique login lets one create, the other reports the race and neither crashes."""
    barrier = threading.Barrier(2, timeout=30)
    real_count = bootstrap.users_store.count

    def count_then_wait(session: Any) -> int:
        n = real_count(session)
        barrier.wait()
        return n

    monkeypatch.setattr(bootstrap.users_store, "count", count_then_wait)
    settings = _settings()
    results: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(bootstrap.ensure_first_admin(engine, settings))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted((r.created, r.raced) for r in results) == [(False, True), (True, False)]
    assert len(_users(engine)) == 1 and len(_audit(engine)) == 1


def test_clienthub_run_prints_the_banner_once(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`clienthub run` end to end up to serving (the server itself is not started here)."""
    import hub.cli
    import hub.logging

    monkeypatch.setenv("CLIENTHUB_SCHEDULER_ENABLED", "false")
    monkeypatch.setenv("CLIENTHUB_WORKER_THREADS", "0")
    monkeypatch.setattr(hub.logging, "setup_logging", lambda *a, **k: None)
    served: list[tuple[str, int]] = []

    def serve(_app: Any, host: str, port: int, on_ready: Callable[[], None]) -> None:
        served.append((host, port))  # the banner comes from the server, once it listens
        on_ready()

    monkeypatch.setattr(hub.cli, "_serve", serve)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["run", "--port", "8765"])
        assert first.exit_code == 0, first.output
        assert "http://127.0.0.1:8765/ui/" in first.output
        password = first.output.split("пароль / password: ")[1].split()[0]
        second = runner.invoke(app, ["run", "--port", "8765"])
        assert second.exit_code == 0, second.output
        assert password not in second.output and "clienthub users list" in second.output
        assert served == [("127.0.0.1", 8765)] * 2
        from hub.db import get_engine

        assert count(get_engine(), User) == 1
    finally:
        get_settings.cache_clear()


def _audit(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.object_type == "user")).scalars())


def test_processes_starting_together_on_an_empty_database_create_everything_once(
    engine: Engine,
) -> None:
    """compose starts two web processes and three workers at once: each runs the first-start
    defaults. Publishing the sample takes long enough that, unserialised, every one of them
    sees no version and publishes its own (and the losers of the source insert crash)."""
    settings = Settings(sandbox_enabled=True, initial_rules_dir=str(SAMPLE))
    starters = 5
    barrier = threading.Barrier(starters, timeout=30)
    admins: list[bootstrap.FirstAdmin] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            bootstrap.ensure_defaults(engine, settings)
            admins.append(bootstrap.ensure_first_admin(engine, settings))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with session_scope(engine, read_only=True) as s:
        versions = list(s.execute(select(RuleSetVersion)).scalars())
        sources = list(s.execute(select(ChannelSource)).scalars())
    assert [(v.id, v.state, v.created_by) for v in versions] == [(1, "published", "system")]
    assert [(x.channel, x.source) for x in sources] == [("form", "site")]
    assert [u.login for u in _users(engine)] == ["admin"]
    assert sum(a.created for a in admins) == 1 and len(admins) == starters


def test_the_first_start_says_it_is_publishing_and_later_starts_are_silent(
    engine: Engine,
) -> None:
    settings = Settings(sandbox_enabled=True, initial_rules_dir=str(SAMPLE))
    said: list[str] = []
    bootstrap.ensure_defaults(engine, settings, say=said.append)
    assert len(said) == 2, said
    assert "публикую правила" in said[0] and str(SAMPLE) in said[0] and "12 файлов" in said[0]
    assert "опубликована версия / published version 1" in said[1]
    bootstrap.ensure_defaults(engine, settings, say=said.append)
    assert len(said) == 2


def _serve_in_thread(port: int, ready: Callable[[], None]) -> tuple[Any, threading.Thread]:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # a bare ASGI app
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    server = make_server(app, "127.0.0.1", port, on_ready=ready)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except SystemExit as exc:  # uvicorn's way to fail a start
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.outcome = outcome  # type: ignore[attr-defined]
    thread.start()
    return server, thread


def test_the_banner_waits_until_the_port_accepts_connections() -> None:
    """ "ClientHub запущен / is running" must be true when printed: the callback runs only once
    uvicorn's socket listens."""
    port = free_port()
    connected: list[bool] = []
    box: dict[str, Any] = {}
    known = threading.Event()  # the server may be ready before this thread has its handle

    def ready() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            connected.append(True)
        known.wait(10)
        box["server"].should_exit = True

    box["server"], thread = _serve_in_thread(port, ready)
    known.set()
    thread.join(20)
    assert not thread.is_alive()
    assert connected == [True]


def test_a_port_in_use_prints_no_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        called: list[bool] = []
        _server, thread = _serve_in_thread(port, lambda: called.append(True))
        thread.join(20)
    assert not thread.is_alive() and called == []
    assert [bool(e.code) for e in thread.outcome] == [True]  # type: ignore[attr-defined]
