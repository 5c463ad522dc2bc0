"""Polls each organisation's reviews in the Yandex Business cabinet (UNOFFICIAL; client.py).

Runs only when ``CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API`` is on, for enabled ``yandex`` sources
with a ``session_id`` secret. Per source ``config``: ``org_id`` (default: the source name),
``api_url``, ``interval_seconds`` (900), ``scan_pages`` (10 pages of 20: the cabinet shows at most
600 reviews), ``max_pages_per_tick`` (5). A refused session is an alert, every tick, never a
silent stop (``connectors.reviews.poll_guarded``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.polling import enabled_sources, run_each
from connectors.reviews import Page, ScanConfig, Schedule, poll_guarded, scan
from connectors.yandex import CHANNEL, client_for, org_id
from connectors.yandex.client import YandexBusinessClient
from connectors.yandex.parse import seen
from hub.settings import get_settings

SCHEDULE = Schedule()


def cursor_name(source: SourceConfig) -> str:
    return f"yandex-reviews:{source.source}"


def polls_cabinet(source: SourceConfig) -> bool:
    return bool(source.secrets.get("session_id")) and source.config.get("poll", True) is not False


def poll_source(
    engine: Engine, source: SourceConfig, client: YandexBusinessClient | None = None
) -> int:
    cfg = source.config
    org = org_id(source)
    scan_cfg = ScanConfig(
        channel=CHANNEL,
        platform="yandex",
        place_key="org_id",
        place_id=org,
        max_pages_per_tick=int(cfg.get("max_pages_per_tick", 5)),
        scan_pages=int(cfg.get("scan_pages", 10)),
    )
    holder: dict[str, YandexBusinessClient] = {}

    def api() -> YandexBusinessClient:
        if "c" not in holder:  # built lazily: missing cookies must surface as an alert
            holder["c"] = client or client_for(source)
        return holder["c"]

    def fetch(position: Any) -> Page:
        page = int(position or 1)
        listing = api().reviews_page(org, page)
        items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
        pager = listing.get("pager") or {}
        limit = int(pager.get("limit") or 20)
        total = int(pager.get("total") or 0)
        more = len(items) >= limit and (not total or page * limit < total)
        return Page([seen(i) for i in items], page + 1 if more else None)

    try:
        return poll_guarded(
            engine,
            source,
            name=cursor_name(source),
            schedule=SCHEDULE,
            platform="Yandex",
            run=lambda: scan(
                engine, source, scan_cfg, cursor_name=cursor_name(source), fetch=fetch
            ),
        )
    finally:
        if client is None and "c" in holder:
            holder["c"].close()


def poll_all(engine: Engine) -> int:
    """The periodic job; does nothing unless the unofficial cabinet API is switched on."""
    if not get_settings().yandex_unofficial_cabinet_api:
        return 0
    return run_each(
        engine, enabled_sources(engine, CHANNEL, polls_cabinet), cursor_name, poll_source
    )
