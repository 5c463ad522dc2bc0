"""Comments under OK group posts, by polling: OK pushes only chat messages.

Enabled per source with ``config.poll_comments = true`` (and ``config.group_id``; secrets
``app_key``, ``app_secret``, ``user_token`` of a group admin). Each tick lists the group's recent
topics and reads each topic's comments forward from its stored anchor (``FIRST`` for a topic
never seen: nothing is skipped). Each page's comments and the advanced anchor are committed
together, so a restart neither skips nor repeats.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.ok import CHANNEL, client_for
from connectors.ok.client import OkClient
from connectors.polling import enabled_sources, run_each, store_polled
from hub.storage import poller_cursors
from hub.storage.raw_events import IncomingEvent

MAX_PAGES = 20  # per topic and tick; the rest is read at the next tick


def cursor_name(source: SourceConfig) -> str:
    return f"ok-discussions:{source.source}"


def polls_comments(source: SourceConfig) -> bool:
    return bool(source.config.get("poll_comments"))


def _event(
    source: SourceConfig, group_id: str, topic_id: str, comment: dict[str, Any]
) -> IncomingEvent:
    body = {
        "group_id": group_id,
        "discussion": {"id": topic_id, "type": "GROUP_TOPIC"},
        "comment": comment,
    }
    return IncomingEvent(
        channel=CHANNEL,
        source=source.source,
        external_id=f"comment:{topic_id}:{comment.get('id')}",
        event_type="discussion_comment",
        headers={"x-clienthub-intake": "ok-discussions"},
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False).encode(),
    )


def poll_source(engine: Engine, source: SourceConfig, client: OkClient | None = None) -> int:
    name = cursor_name(source)
    group_id = str(source.config.get("group_id") or "")
    if not group_id:
        raise ValueError(f"OK source {source.source!r} polls comments but has no config.group_id")
    with engine.connect() as conn:
        cursor = poller_cursors.load(conn, name)
    anchors: dict[str, str] = dict(cursor.get("anchors", {}))
    own = client is None
    client = client or client_for(source)
    new = 0
    try:
        topics = client.group_topics(group_id, int(source.config.get("topics_count", 20)))
        for topic in topics:
            for _ in range(MAX_PAGES):
                page = client.comments(topic, anchors.get(topic))
                comments = [c for c in page.get("comments", []) if isinstance(c, dict)]
                if page.get("anchor"):
                    anchors[topic] = str(page["anchor"])
                new += store_polled(
                    engine,
                    cursor_name=name,
                    cursor={"anchors": anchors},
                    events=[_event(source, group_id, topic, c) for c in comments],
                )
                if not page.get("has_more") or not comments:
                    break
    finally:
        if own:
            client.close()
    return new


def poll_all(engine: Engine) -> int:
    """The periodic job: every enabled OK source with ``poll_comments``."""
    return run_each(
        engine, enabled_sources(engine, CHANNEL, polls_comments), cursor_name, poll_source
    )
