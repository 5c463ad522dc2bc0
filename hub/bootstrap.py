"""First-start defaults, so that a fresh install shows real work with nothing configured."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.settings import Settings
from hub.storage import sources as sources_store

log = logging.getLogger("clienthub.bootstrap")


def ensure_defaults(engine: Engine, settings: Settings) -> None:
    """Create the initial sources (default: the site form ``form/site``) when none exist yet."""
    with session_scope(engine) as s:
        if sources_store.list_all(s):
            return
        for spec in settings.initial_sources:
            channel, _, source = spec.partition("/")
            if channel and source:
                sources_store.upsert(s, channel=channel, source=source, title=f"{channel}/{source}")
                log.info("created default source %s/%s", channel, source)
