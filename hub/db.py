"""Engines and sessions. Storage code never commits: the request or the job wrapper does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from hub.settings import get_settings

# SQLite transactions start with BEGIN IMMEDIATE unless marked read-only: a deferred transaction
# that reads and then writes fails at once with "database is locked" when another writer
# committed in between, whereas IMMEDIATE waits its turn (busy_timeout).
_read_only: ContextVar[bool] = ContextVar("clienthub_sqlite_read_only", default=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL fsyncs the WAL on every commit, so an
    # acknowledged appeal survives a power cut (NORMAL may lose the last transactions).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=kwargs.pop("pool_size", 8),
            max_overflow=kwargs.pop("max_overflow", 8),
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN and breaks "BEGIN IMMEDIATE"; take
        # control so that writers queue on the lock instead of failing on upgrade.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if _read_only.get() else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_size=kwargs.pop("pool_size", 10),
        max_overflow=kwargs.pop("max_overflow", 10),
        pool_pre_ping=True,
        **kwargs,
    )


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return _engine_for(get_settings().database_url)


def reset_engines() -> None:
    """Tests and CLI commands that change ``CLIENTHUB_DATABASE_URL`` call this."""
    _engine_for.cache_clear()
    get_settings.cache_clear()


@contextmanager
def session_scope(engine: Engine | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commit at the end, roll back on error."""
    engine = engine or get_engine()
    token = _read_only.set(read_only)
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        _read_only.reset(token)
