"""Shared plumbing for pollers (VK Bots Long Poll, Telegram getUpdates, OK discussions).

Polled events take the webhook's durable path: each is stored as a raw event (idempotent on the
platform id, with its parse job) and the poller's cursor advances in the same transaction, so a
crash between fetch and commit refetches, and a commit never skips.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from hub.db import session_scope
from hub.storage import poller_cursors
from hub.storage import sources as sources_store
from hub.storage.raw_events import IncomingEvent, store_event

log = logging.getLogger("clienthub.pollers")


def store_polled(
    engine: Engine, *, cursor_name: str, cursor: dict, events: Iterable[IncomingEvent]
) -> int:
    """Store the events and the new cursor in one transaction; returns how many were new."""
    new = 0
    with engine.begin() as conn:
        for ev in events:
            if not store_event(conn, ev).duplicate:
                new += 1
        poller_cursors.save(conn, cursor_name, cursor)
    return new


def enabled_sources(
    engine: Engine, channel: str, wanted: Callable[[SourceConfig], bool]
) -> list[SourceConfig]:
    with session_scope(engine, read_only=True) as s:
        rows = [r for r in sources_store.list_all(s) if r.enabled and r.channel == channel]
        configs = [sources_store.to_config(r) for r in rows]
    return [c for c in configs if wanted(c)]


def run_each(
    engine: Engine,
    sources: list[SourceConfig],
    name: Callable[[SourceConfig], str],
    poll: Callable[[Engine, SourceConfig], int],
) -> int:
    """Poll every source (in parallel: long polls block), recording failures on the cursor row
    instead of raising, so one broken source does not stop the others."""

    def one(source: SourceConfig) -> int:
        try:
            return poll(engine, source)
        except Exception as exc:  # recorded and retried at the next tick
            log.warning("poller %s failed: %s", name(source), exc)
            poller_cursors.record_error(engine, name(source), f"{type(exc).__name__}: {exc}")
            return 0

    if len(sources) <= 1:
        return sum(one(s) for s in sources)
    with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
        return sum(pool.map(one, sources))
