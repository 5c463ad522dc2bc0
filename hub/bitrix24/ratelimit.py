"""The portal's rate limit as a leaky bucket shared by every worker of one installation.

Bitrix24 counts requests per portal *and source IP* (docs: settings/performance/limits.md), so
all processes on this machine draw from one bucket: +1 per HTTP request (a ``batch`` is one),
drained at ``rate`` per second, refused above ``burst``. The bucket is a ``rate_buckets`` row,
updated under a row lock (``SELECT … FOR UPDATE`` on PostgreSQL, the ``BEGIN IMMEDIATE`` write
lock on SQLite), so two workers never both take the last slot. ``QUERY_LIMIT_EXCEEDED`` from the
portal means someone else on this IP spent it: :meth:`penalize` fills the bucket and blocks it,
which slows every worker down at once. ``OPERATION_TIME_LIMIT`` blocks one method (a row per
method) until the portal's ``operating_reset_at``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.db import session_scope
from hub.models import RateBucket
from hub.timeutil import as_utc, utcnow


class RateLimiter(Protocol):
    def acquire(self, method: str) -> None:
        """Block until one request to ``method`` may go out."""

    def penalize(self, seconds: float) -> None:
        """The portal refused for rate: everyone waits ``seconds``."""

    def block_method(self, method: str, until: datetime) -> None:
        """``OPERATION_TIME_LIMIT``: no calls to ``method`` before ``until``."""


@dataclass
class _State:
    level: float
    updated_at: datetime
    blocked_until: datetime | None


def _leak(state: _State, now: datetime, rate: float) -> float:
    elapsed = max(0.0, (now - as_utc(state.updated_at)).total_seconds())
    return max(0.0, state.level - elapsed * rate)


def _take(state: _State, now: datetime, rate: float, burst: float) -> float:
    """Take one slot if possible: returns 0 and updates ``state``, or the seconds to wait."""
    if state.blocked_until is not None and as_utc(state.blocked_until) > now:
        return (as_utc(state.blocked_until) - now).total_seconds()
    level = _leak(state, now, rate)
    if level + 1 <= burst:
        state.level, state.updated_at, state.blocked_until = level + 1, now, None
        return 0.0
    return (level + 1 - burst) / rate


class MemoryRateLimiter:
    """One process only: the sandbox's clients, the contract tests, ``b24 check``."""

    def __init__(
        self,
        burst: float = 50,
        rate: float = 2.0,
        *,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.burst, self.rate, self._now, self._sleep = burst, rate, now, sleep
        self._state = _State(0.0, now(), None)
        self._methods: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def acquire(self, method: str) -> None:
        while True:
            with self._lock:
                now = self._now()
                wait = _method_wait(self._methods.get(method), now)
                if wait <= 0:
                    wait = _take(self._state, now, self.rate, self.burst)
            if wait <= 0:
                return
            self._sleep(wait)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            now = self._now()
            self._state = _State(self.burst, now, now + timedelta(seconds=seconds))

    def block_method(self, method: str, until: datetime) -> None:
        with self._lock:
            self._methods[method] = until


def ensure_row(s: Session, name: str, now: datetime) -> RateBucket:
    """The row, created if missing without racing another process, and locked."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(RateBucket)
        .values(name=name, level=0.0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return s.execute(
        select(RateBucket).where(RateBucket.name == name).with_for_update()
    ).scalar_one()


def _method_wait(until: datetime | None, now: datetime) -> float:
    return 0.0 if until is None else (as_utc(until) - now).total_seconds()


class DbRateLimiter:
    """Shared through the database; one row per portal plus one per blocked method.

    In-process pacing: threads of one process queue on a local lock and sleep exactly the wait
    the database computed, instead of polling the row.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        burst: float = 50,
        rate: float = 2.0,
        *,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.name, self.burst, self.rate = engine, name, burst, rate
        self._now, self._sleep = now, sleep
        self._local = threading.Lock()
        self._method_blocks: dict[str, datetime] = {}

    def _method_key(self, method: str) -> str:
        return f"{self.name}|op|{method}"

    def acquire(self, method: str) -> None:
        with self._local:
            while True:
                wait = self._try_take(method)
                if wait <= 0:
                    return
                self._sleep(min(wait, 5.0))  # re-read: another process may have penalized

    def _try_take(self, method: str) -> float:
        now = self._now()
        local_block = self._method_blocks.get(method)
        if local_block is not None and as_utc(local_block) > now:
            return (as_utc(local_block) - now).total_seconds()
        with session_scope(self.engine) as s:
            ensure_row(s, self.name, now)
            rows = {
                r.name: r
                for r in s.execute(
                    select(RateBucket)
                    .where(RateBucket.name.in_([self.name, self._method_key(method)]))
                    .with_for_update()
                ).scalars()
            }
            op = rows.get(self._method_key(method))
            if op is not None and op.blocked_until is not None and as_utc(op.blocked_until) > now:
                self._method_blocks[method] = op.blocked_until
                return (as_utc(op.blocked_until) - now).total_seconds()
            row = rows[self.name]
            state = _State(row.level, row.updated_at, row.blocked_until)
            wait = _take(state, now, self.rate, self.burst)
            if wait <= 0:
                row.level, row.updated_at, row.blocked_until = (
                    state.level,
                    state.updated_at,
                    state.blocked_until,
                )
            return wait

    def penalize(self, seconds: float) -> None:
        now = self._now()
        with session_scope(self.engine) as s:
            row = ensure_row(s, self.name, now)
            row.level, row.updated_at = float(self.burst), now
            until = now + timedelta(seconds=seconds)
            if row.blocked_until is None or as_utc(row.blocked_until) < until:
                row.blocked_until = until

    def block_method(self, method: str, until: datetime) -> None:
        self._method_blocks[method] = until
        with session_scope(self.engine) as s:
            ensure_row(s, self._method_key(method), self._now()).blocked_until = until

    def level(self) -> float:
        """The bucket's current fill (for `b24 check` and tests)."""
        with session_scope(self.engine, read_only=True) as s:
            row = s.get(RateBucket, self.name)
            if row is None:
                return 0.0
            return _leak(_State(row.level, row.updated_at, None), self._now(), self.rate)
