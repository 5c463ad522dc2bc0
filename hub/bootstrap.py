"""First-start defaults, so that a fresh install shows real work with nothing configured."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.rules_io import read_dir
from hub.settings import Settings
from hub.storage import rulesets
from hub.storage import sources as sources_store

log = logging.getLogger("clienthub.bootstrap")


def ensure_defaults(engine: Engine, settings: Settings) -> None:
    """First start: the initial sources (default ``form/site``) and the sample rule directory
    published as version 1, so that a fresh install routes for real. Later starts change nothing."""
    with session_scope(engine) as s:
        if not sources_store.list_all(s):
            for spec in settings.initial_sources:
                channel, _, source = spec.partition("/")
                if channel and source:
                    sources_store.upsert(
                        s, channel=channel, source=source, title=f"{channel}/{source}"
                    )
                    log.info("created default source %s/%s", channel, source)
    rules_dir = Path(settings.initial_rules_dir) if settings.initial_rules_dir else None
    if rules_dir is None or not rules_dir.is_dir():
        return
    with session_scope(engine) as s:
        if rulesets.count_versions(s):
            return
        version = rulesets.import_draft(
            session=s,
            files=read_dir(rules_dir),
            created_by="system",
            note=f"first start: {rules_dir.name}",
        )
        rulesets.publish(session=s, published_by="system", version_id=version.id)
        log.info("published rule directory %s as version %s", rules_dir, version.id)
