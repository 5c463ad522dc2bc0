"""``getUpdates`` polling: the alternative to the webhook for a bot without a public URL.

Enabled per source with ``config.intake = "polling"``. The cursor is the next ``offset``; an
update is confirmed to Telegram only by asking with a higher offset, which happens after the
updates and the new offset are committed together, so a crash re-fetches and never loses.
Telegram refuses getUpdates (409) while a webhook is set: ``clienthub channels setup telegram
--polling`` removes it.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.polling import enabled_sources, run_each, store_polled
from connectors.telegram import CHANNEL, client_for
from connectors.telegram.client import TelegramClient
from hub.storage import poller_cursors
from hub.storage.raw_events import IncomingEvent

DEFAULT_TIMEOUT = 25  # long-poll seconds


def cursor_name(source: SourceConfig) -> str:
    return f"telegram-updates:{source.source}"


def uses_polling(source: SourceConfig) -> bool:
    return source.config.get("intake") == "polling"


def poll_source(engine: Engine, source: SourceConfig, client: TelegramClient | None = None) -> int:
    name = cursor_name(source)
    with engine.connect() as conn:
        cursor = poller_cursors.load(conn, name)
    own = client is None
    client = client or client_for(source)
    try:
        timeout = int(source.config.get("poll_timeout", DEFAULT_TIMEOUT))
        updates = client.get_updates(cursor.get("offset"), timeout)
    finally:
        if own:
            client.close()
    if not updates:
        return 0
    events = []
    for u in updates:
        kind = next((k for k in u if k != "update_id"), None)
        events.append(
            IncomingEvent(
                channel=CHANNEL,
                source=source.source,
                external_id=str(u["update_id"]),
                event_type=kind[:64] if kind else None,
                headers={"x-clienthub-intake": "telegram-getupdates"},
                content_type="application/json",
                body=json.dumps(u, ensure_ascii=False).encode(),
            )
        )
    offset = max(int(u["update_id"]) for u in updates) + 1
    return store_polled(engine, cursor_name=name, cursor={"offset": offset}, events=events)


def poll_all(engine: Engine) -> int:
    """The periodic job: every enabled Telegram source with ``intake = "polling"``."""
    return run_each(
        engine, enabled_sources(engine, CHANNEL, uses_polling), cursor_name, poll_source
    )
