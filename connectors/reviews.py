"""What the 2GIS and Yandex review connectors share: the scan that turns a platform's review list
into new / edited / hidden / deleted events, the appeal built from a review, and the session alert.

Neither platform pushes reviews or marks changes, so each source's poller re-reads the newest
reviews (up to ``scan_pages`` pages) and compares every review with what it saw before (its
rating and text, its hidden flag). The cursor keeps that snapshot and the scan's position; each
page's events and the advanced cursor are committed together, so a restart in the middle of a
scan resumes on the next page and nothing is fetched into two appeals (raw events and appeals are
unique on ``review:<id>[:<change>]`` too). A review missing from a finished scan is reported as
deleted only if it is newer than the oldest review the scan saw: older ones merely fell off the
window (Yandex shows only the last 600).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from connectors.base import Author, ParsedAppeal, SourceConfig
from connectors.platform_http import PermanentError, TransientError
from connectors.polling import store_polled
from hub.settings import get_settings
from hub.storage import poller_cursors
from hub.storage.raw_events import IncomingEvent

log = logging.getLogger("clienthub.reviews")

NEW, EDITED, HIDDEN, DELETED = "review", "review_edited", "review_hidden", "review_deleted"
NOTES = {
    EDITED: "Отзыв изменён автором.",
    HIDDEN: "Отзыв скрыт площадкой",
    DELETED: "Отзыв больше не показывается на площадке (удалён автором или модерацией).",
}


class SessionRefused(PermanentError):
    """The platform refused our login or session: nothing is read until someone fixes it."""


@dataclass(frozen=True)
class Seen:
    """One review as a page showed it, normalised by the platform's connector."""

    id: str
    rating: int | None
    text: str
    hidden: bool
    created: str  # ISO 8601, comparable as text
    author: str | None
    item: Mapping[str, Any]  # the platform's own JSON, stored verbatim in the raw event

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.rating}|{self.text}".encode()).hexdigest()[:16]


@dataclass
class Page:
    reviews: list[Seen]
    next: Any  # the platform's position of the next page; None when this was the last


@dataclass
class ScanConfig:
    channel: str
    platform: str  # "2gis", "yandex": recorded in every event
    place_key: str  # "branch_id" / "org_id"
    place_id: str
    max_pages_per_tick: int = 5
    scan_pages: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


def _event(
    cfg: ScanConfig,
    source: SourceConfig,
    kind: str,
    review: Mapping[str, Any],
    ext: str,
    last: Mapping[str, Any] | None = None,
) -> IncomingEvent:
    body = {"platform": cfg.platform, cfg.place_key: cfg.place_id, "event": kind, "review": review}
    if last is not None:
        body["last_known"] = last
    return IncomingEvent(
        channel=cfg.channel,
        source=source.source,
        external_id=ext,
        event_type=kind,
        headers={"x-clienthub-intake": f"{cfg.platform}-reviews-poller"},
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False).encode(),
    )


def _changes(
    cfg: ScanConfig, source: SourceConfig, known: dict[str, Any], r: Seen
) -> list[IncomingEvent]:
    before = known.get(r.id)
    snapshot = {"f": r.fingerprint, "h": r.hidden, "t": r.created, "r": r.rating, "a": r.author}
    known[r.id] = snapshot
    if before is None:
        return [_event(cfg, source, NEW, r.item, f"review:{r.id}")]
    out = []
    if before.get("f") != r.fingerprint or (before.get("h") and not r.hidden):
        out.append(_event(cfg, source, EDITED, r.item, f"review:{r.id}:edit:{r.fingerprint}"))
    if r.hidden and not before.get("h"):
        out.append(_event(cfg, source, HIDDEN, r.item, f"review:{r.id}:hidden:{r.fingerprint}"))
    return out


def scan(
    engine: Engine,
    source: SourceConfig,
    cfg: ScanConfig,
    *,
    cursor_name: str,
    fetch: Callable[[Any], Page],
) -> tuple[int, bool]:
    """One tick of a source's scan: up to ``max_pages_per_tick`` pages, each committed with the
    cursor. Returns (new events, whether the scan finished)."""
    with engine.connect() as conn:
        cursor = poller_cursors.load(conn, cursor_name)
    known: dict[str, Any] = dict(cursor.get("known", {}))
    state = dict(cursor.get("scan") or {"next": None, "seen": [], "pages": 0, "oldest": None})
    seen: set[str] = set(state["seen"])
    new = 0
    for _ in range(cfg.max_pages_per_tick):
        page = fetch(state["next"])
        events = []
        for r in page.reviews:
            if r.id in seen:
                continue  # shifted onto the next page by a newer review
            seen.add(r.id)
            events += _changes(cfg, source, known, r)
            if state["oldest"] is None or r.created < state["oldest"]:
                state["oldest"] = r.created
        state.update(next=page.next, seen=sorted(seen), pages=state["pages"] + 1)
        done = page.next is None or state["pages"] >= cfg.scan_pages
        if done:
            events += _deleted(cfg, source, known, seen, state["oldest"])
        new += store_polled(
            engine,
            cursor_name=cursor_name,
            cursor={"known": known, "scan": None if done else state},
            events=events,
        )
        if done:
            return new, True
    return new, False


def _deleted(
    cfg: ScanConfig, source: SourceConfig, known: dict[str, Any], seen: set[str], oldest: str | None
) -> list[IncomingEvent]:
    out = []
    for rid in [k for k in known if k not in seen]:
        last = known.pop(rid)
        if oldest is not None and str(last.get("t") or "") >= oldest:
            out.append(_event(cfg, source, DELETED, {"id": rid}, f"review:{rid}:deleted", last))
    return out


class Schedule:
    """When each source is due: its own interval, at once while a scan is unfinished, later
    after a failure (the platform's Retry-After when it gave one). Kept in memory: after a
    restart every source is polled at once, which the cursor makes harmless."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def due(self, name: str) -> bool:
        with self._lock:
            return self._due.get(name, 0.0) <= self._clock()

    def after(self, name: str, seconds: float) -> None:
        with self._lock:
            self._due[name] = self._clock() + seconds


def poll_guarded(
    engine: Engine,
    source: SourceConfig,
    *,
    name: str,
    schedule: Schedule,
    platform: str,
    run: Callable[[], tuple[int, bool]],
) -> int:
    """Run one source's tick if due; record failures on the cursor row (what ``clienthub channels
    status`` and the UI show) and never stop polling: a refused session is retried every tick,
    so the poller resumes by itself once the credentials are fixed."""
    if not schedule.due(name):
        return 0
    interval = float(source.config.get("interval_seconds", 900))
    try:
        new, finished = run()
    except SessionRefused as exc:
        message = f"ALERT: {platform} refused the session for {source.source}: {exc.detail}"
        log.error(message, extra={"platform": platform, "source": source.source})
        poller_cursors.record_error(engine, name, message)
        schedule.after(name, min(interval, 300.0))
        return 0
    except TransientError as exc:
        log.warning("%s poll of %s deferred: %s", platform, source.source, exc.detail)
        poller_cursors.record_error(engine, name, f"{platform}: {exc.detail}")
        schedule.after(name, exc.retry_after if exc.retry_after else min(interval, 60.0))
        return 0
    schedule.after(name, interval if finished else 0.0)
    return new


def low_rating_max(config: Mapping[str, Any]) -> int:
    value = config.get("low_rating_max")
    return int(value) if value is not None else get_settings().review_low_rating_max


def review_appeal(
    *,
    kind: str,
    external_id: str,
    review_id: str,
    text: str,
    rating: int | None,
    author: Author,
    config: Mapping[str, Any],
    fields: dict[str, Any],
    when: datetime | None = None,
    photos: list[str] | None = None,
    note: str | None = None,
) -> ParsedAppeal:
    """A review as an appeal: one deal per review (``review:<id>``), every later change a
    comment in it; ``fields.low_rating`` (present only when low) lets rules send it to quality
    control first."""
    status = {NEW: "new", EDITED: "edited", HIDDEN: "hidden", DELETED: "deleted"}.get(kind, kind)
    out = dict(fields, review_id=review_id, review_status=status)
    if rating is not None and rating <= low_rating_max(config):
        out["low_rating"] = True  # only when low: rules test presence (fields: {low_rating: true})
    heading = note or NOTES.get(kind)
    return ParsedAppeal(
        kind="review",
        external_id=external_id,
        thread_key=f"review:{review_id}",
        text=f"[{heading}]\n{text}".strip() if heading else text,
        author=author,
        attachments=[{"type": "photo", "url": u} for u in photos or []],
        rating=rating,
        fields=out,
        received_at=when,
        is_edit=kind != NEW,
    )
