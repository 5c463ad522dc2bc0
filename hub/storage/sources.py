"""Configured channel sources, with their secrets encrypted at rest."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.base import SourceConfig
from hub import crypto
from hub.db import session_scope
from hub.models import ChannelSource


def upsert(
    session: Session,
    *,
    channel: str,
    source: str,
    title: str = "",
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    enabled: bool = True,
) -> ChannelSource:
    row = session.execute(
        select(ChannelSource).where(
            ChannelSource.channel == channel, ChannelSource.source == source
        )
    ).scalar_one_or_none()
    if row is None:
        row = ChannelSource(channel=channel, source=source)
        session.add(row)
    row.title = title or row.title
    row.enabled = enabled
    if config is not None:
        row.config = config
    if secrets is not None:
        row.secrets_enc = crypto.encrypt(json.dumps(secrets)) if secrets else None
    session.flush()
    return row


def remove(session: Session, *, channel: str, source: str) -> int:
    result = session.execute(
        delete(ChannelSource).where(
            ChannelSource.channel == channel, ChannelSource.source == source
        )
    )
    return result.rowcount


def list_all(session: Session) -> list[ChannelSource]:
    return list(
        session.execute(select(ChannelSource).order_by(ChannelSource.channel, ChannelSource.source))
        .scalars()
        .all()
    )


def to_config(row: ChannelSource) -> SourceConfig:
    secrets = json.loads(crypto.decrypt(row.secrets_enc)) if row.secrets_enc else {}
    return SourceConfig(
        channel=row.channel, source=row.source, config=dict(row.config), secrets=secrets
    )


class SourceCache:
    """The webhook path must not read the database per request: sources are cached and reloaded
    every ``ttl`` seconds, or at once (at most once a second) when an unknown source is asked."""

    def __init__(self, engine: Engine, ttl: float = 10.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str], SourceConfig] = {}
        self._loaded_at = 0.0

    def _reload(self) -> None:
        with session_scope(self.engine, read_only=True) as s:
            rows = [r for r in list_all(s) if r.enabled]
        self._by_key = {(r.channel, r.source): to_config(r) for r in rows}
        self._loaded_at = time.monotonic()

    def get(self, channel: str, source: str) -> SourceConfig | None:
        now = time.monotonic()
        with self._lock:
            if now - self._loaded_at > self.ttl:
                self._reload()
            found = self._by_key.get((channel, source))
            if found is None and now - self._loaded_at > 1.0:
                self._reload()
                found = self._by_key.get((channel, source))
            return found

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0
