"""Polls each 2GIS branch's reviews in the business cabinet (UNOFFICIAL API; see client.py).

Runs only when ``CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API`` is on, for enabled ``twogis`` sources
with secrets ``login`` and ``password``. Per source ``config``: ``branch_id`` (default: the
source name), ``api_url``, ``interval_seconds`` (default 900), ``page_size`` (50),
``scan_pages`` (how many newest pages are watched for edits and deletions, 10),
``max_pages_per_tick`` (5). The scan and its cursor are ``connectors.reviews.scan``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.polling import enabled_sources, run_each
from connectors.reviews import Page, ScanConfig, Schedule, poll_guarded, scan
from connectors.twogis import CHANNEL, client_for
from connectors.twogis.client import TwoGisClient
from connectors.twogis.parse import seen
from hub.settings import get_settings

SCHEDULE = Schedule()


def cursor_name(source: SourceConfig) -> str:
    return f"twogis-reviews:{source.source}"


def polls_cabinet(source: SourceConfig) -> bool:
    return bool(source.secrets.get("login")) and source.config.get("poll", True) is not False


def poll_source(engine: Engine, source: SourceConfig, client: TwoGisClient | None = None) -> int:
    cfg = source.config
    branch = str(cfg.get("branch_id") or source.source)
    limit = int(cfg.get("page_size", 50))
    scan_cfg = ScanConfig(
        channel=CHANNEL,
        platform="2gis",
        place_key="branch_id",
        place_id=branch,
        max_pages_per_tick=int(cfg.get("max_pages_per_tick", 5)),
        scan_pages=int(cfg.get("scan_pages", 10)),
    )
    own = client is None
    api = client or client_for(source)

    def fetch(offset_date: Any) -> Page:
        items = api.branch_reviews(branch, limit=limit, offset_date=offset_date)
        last = items[-1].get("dateCreated") if items else None
        return Page([seen(i) for i in items], last if len(items) >= limit and last else None)

    try:
        return poll_guarded(
            engine,
            source,
            name=cursor_name(source),
            schedule=SCHEDULE,
            platform="2GIS",
            run=lambda: scan(
                engine, source, scan_cfg, cursor_name=cursor_name(source), fetch=fetch
            ),
        )
    finally:
        if own:
            api.close()


def poll_all(engine: Engine) -> int:
    """The periodic job; does nothing unless the unofficial cabinet API is switched on."""
    if not get_settings().twogis_unofficial_cabinet_api:
        return 0
    return run_each(
        engine, enabled_sources(engine, CHANNEL, polls_cabinet), cursor_name, poll_source
    )
