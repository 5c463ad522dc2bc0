"""VK Bots Long Poll: the intake for a community that cannot expose a public URL.

Enabled per source with ``config.intake = "longpoll"``. VK keeps the event queue on its side; the
poller holds ``{server, key, ts}`` in ``poller_cursors`` and stores updates exactly like Callback
events (same envelope, same ``event_id``), so parsing does not know which intake was used.
``failed`` answers (dev.vk.com bots-long-poll; vk_api ``bot_longpoll.py``): 1 — take the new
``ts``; 2 — the key expired, get a new one and keep ``ts``; 3 — get a new key and ``ts``.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.polling import enabled_sources, run_each, store_polled
from connectors.vk import CHANNEL, client_for
from connectors.vk.client import VkClient
from hub.storage import poller_cursors
from hub.storage.raw_events import IncomingEvent

log = logging.getLogger("clienthub.vk.longpoll")
DEFAULT_WAIT = 25  # seconds; VK recommends 25, allows up to 90


def cursor_name(source: SourceConfig) -> str:
    return f"vk-longpoll:{source.source}"


def uses_longpoll(source: SourceConfig) -> bool:
    return source.config.get("intake") == "longpoll"


def _server(client: VkClient, source: SourceConfig) -> dict[str, str]:
    group_id = source.config.get("group_id")
    if group_id in (None, ""):
        raise ValueError(f"VK source {source.source!r} has no config.group_id")
    return client.get_long_poll_server(int(group_id))


def poll_source(engine: Engine, source: SourceConfig, client: VkClient | None = None) -> int:
    """One ``a_check`` round; returns the number of new events stored."""
    name = cursor_name(source)
    with engine.connect() as conn:
        cursor = poller_cursors.load(conn, name)
    own = client is None
    client = client or client_for(source)
    try:
        if not cursor.get("key"):
            fresh = _server(client, source)
            cursor = {**fresh, "ts": cursor.get("ts") or fresh["ts"]}
        wait = int(source.config.get("longpoll_wait", DEFAULT_WAIT))
        data = client.long_poll_check(cursor["server"], cursor["key"], cursor["ts"], wait)
        failed = data.get("failed")
        if failed is not None:
            if failed == 1:
                log.warning("VK long poll %s: history lost, continuing from new ts", name)
                cursor = {**cursor, "ts": str(data["ts"])}
            elif failed == 2:
                cursor = {**_server(client, source), "ts": cursor["ts"]}
            else:
                cursor = _server(client, source)
            store_polled(engine, cursor_name=name, cursor=cursor, events=[])
            return 0
        events = [
            IncomingEvent(
                channel=CHANNEL,
                source=source.source,
                external_id=str(u["event_id"]),
                event_type=str(u.get("type", ""))[:64] or None,
                headers={"x-clienthub-intake": "vk-longpoll"},
                content_type="application/json",
                body=json.dumps(u, ensure_ascii=False).encode(),
            )
            for u in data.get("updates", [])
        ]
        return store_polled(
            engine, cursor_name=name, cursor={**cursor, "ts": str(data["ts"])}, events=events
        )
    finally:
        if own:
            client.close()


def poll_all(engine: Engine) -> int:
    """The periodic job: every enabled VK source with ``intake = "longpoll"``."""
    sources = enabled_sources(engine, CHANNEL, uses_longpoll)
    return run_each(engine, sources, cursor_name, poll_source)
