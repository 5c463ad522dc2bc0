"""Configured channel sources, with their secrets encrypted at rest.

A change made on someone's word (``actor``: the CLI, later the UI) is written to the audit log
with the source before and after; secrets appear there only masked, plus which ones changed.
"""

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
from hub.models import AuditEntry, ChannelSource


def _find(session: Session, channel: str, source: str) -> ChannelSource | None:
    return session.execute(
        select(ChannelSource).where(
            ChannelSource.channel == channel, ChannelSource.source == source
        )
    ).scalar_one_or_none()


def upsert(
    session: Session,
    *,
    channel: str,
    source: str,
    title: str = "",
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    enabled: bool = True,
    actor: str | None = None,
) -> ChannelSource:
    """Add or change a source; with ``actor``, audited (``source.add`` / ``source.change``)."""
    row = _find(session, channel, source)
    before = None if row is None else _plain(row)
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
    if actor is not None:
        after = _plain(row)
        if after != before:
            action = "source.add" if before is None else "source.change"
            _audit(session, actor, action, row, before, after)
    return row


def remove(session: Session, *, channel: str, source: str, actor: str | None = None) -> int:
    """Delete a source; with ``actor``, audited (``source.remove``) with what it was."""
    row = _find(session, channel, source) if actor is not None else None
    before = None if row is None else _plain(row)
    result = session.execute(
        delete(ChannelSource).where(
            ChannelSource.channel == channel, ChannelSource.source == source
        )
    )
    if row is not None and actor is not None and result.rowcount:
        _audit(session, actor, "source.remove", row, before, None)
    return result.rowcount


_UNREADABLE = "(не расшифровываются текущим ключом)"


def _plain(row: ChannelSource) -> dict[str, Any]:
    """The source as compared for the audit: secrets in plain text (never stored so)."""
    try:
        secrets: dict[str, Any] | str = to_config(row).secrets
    except crypto.SecretKeyError:
        secrets = _UNREADABLE
    return {
        "title": row.title,
        "enabled": row.enabled,
        "config": dict(row.config),
        "secrets": secrets,
    }


def _masked(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    secrets = state["secrets"]
    if isinstance(secrets, dict):
        secrets = {k: crypto.mask(str(v)) for k, v in sorted(secrets.items())}
    return {**state, "secrets": secrets}


def _audit(
    session: Session,
    actor: str,
    action: str,
    row: ChannelSource,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    old = before["secrets"] if before and isinstance(before["secrets"], dict) else {}
    new = after["secrets"] if after and isinstance(after["secrets"], dict) else {}
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type="channel_source",
            object_id=f"{row.channel}/{row.source}",
            details={
                "before": _masked(before),
                "after": _masked(after),
                "secrets_changed": changed,
            },
        )
    )


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
