"""Reaction-time reports over HTTP: JSON for the dashboard, CSV for a spreadsheet, and the
``clienthub_appeals_overdue`` gauge for Prometheus.

- ``GET /api/reaction?since=&until=&by=department`` -> the total and one line per key;
- ``GET /api/reaction.csv?...`` -> the same as CSV (``;``-separated, UTF-8 with BOM, so Excel
  in a Russian locale opens it in columns).
Both need a login with ``dashboard.read`` (the figures name employees). ``report`` is the
function the admin UI calls for the same figures.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.db import session_scope
from hub.http.params import invalid
from hub.routing import service as routing
from hub.storage import reaction as store
from hub.storage import rulesets
from hub.storage.users import SessionUser
from hub.timeutil import as_utc, utcnow
from hub.ui.security import require

router = APIRouter()
MAX_DAYS = 366
DEFAULT_DAYS = 30
CSV_COLUMNS = (
    "dimension", "key", "name", "appeals", "answered", "median_minutes", "p90_minutes",
    "with_target", "within_target", "within_target_share", "overdue_now",
)  # fmt: skip


@dataclass
class Report:
    since: datetime
    until: datetime
    by: str
    now: datetime
    total: store.Figures
    lines: list[store.Figures]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": self.by,
            "now": self.now.isoformat(),
            "total": self.total.as_dict(),
            "lines": [line.as_dict() for line in self.lines],
        }


def names_for(session: Session, by: str) -> dict[str, str]:
    """Human names of regions, departments and topics from the rule set in force."""
    version = rulesets.published_id(session)
    if version is None or by not in ("region", "department", "topic"):
        return {}
    model = routing.compiled(session, version).model
    if by == "region":
        return {r.code: r.name for r in model.regions}
    if by == "department":
        return {d.code: d.name for d in model.departments}
    return {t.code: t.title for t in model.topics}


def report(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    by: str = "department",
    now: datetime | None = None,
) -> Report:
    """Figures of appeals received in ``[since, until)``; "overdue" is judged at ``now``."""
    now = as_utc(now or utcnow())
    with session_scope(engine, read_only=True) as s:
        items = store.rows(s, since=as_utc(since), until=as_utc(until))
        names = names_for(s, by)
    total, lines = store.figures(items, by=by, now=now, names=names)
    return Report(as_utc(since), as_utc(until), by, now, total, lines)


def overdue_now(engine: Engine, now: datetime | None = None) -> list[tuple[str, int]]:
    """(department name, open appeals past their deadline), most first: one indexed count,
    cheap enough for the dashboard at any table size."""
    with session_scope(engine, read_only=True) as s:
        counts = store.overdue_by_department(s, as_utc(now or utcnow()))
        names = names_for(s, "department") if counts else {}
    return sorted(((names.get(k, k) or "—", n) for k, n in counts.items()), key=lambda p: -p[1])


def to_csv(rep: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in [rep.total, *rep.lines]:
        row = line.as_dict()
        writer.writerow([rep.by, *(_cell(row[c]) for c in CSV_COLUMNS[1:])])
    return "\ufeff" + buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")  # a decimal comma, as the spreadsheet expects
    return str(value)


def _period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    end = _moment(until, end=True) if until else utcnow()
    start = _moment(since, end=False) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise invalid("since", "since must be before until")
    if end - start > timedelta(days=MAX_DAYS):
        raise invalid("since", f"a period of at most {MAX_DAYS} days")
    return start, end


def _moment(text: str, *, end: bool) -> datetime:
    """``2026-11-01`` (a Moscow day; ``until`` includes it) or a full ISO moment."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(0), tzinfo=store.WEEK_ZONE).astimezone(UTC)
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise invalid("until" if end else "since", f"not a date: {text!r}") from None


def _by(value: str) -> str:
    if value not in store.DIMENSIONS:
        raise invalid("by", f"one of {', '.join(store.DIMENSIONS)}")
    return value


@router.get("/api/reaction")
def reaction_json(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    by: str = "department",
    viewer: SessionUser = Depends(require("dashboard.read")),
) -> dict[str, Any]:
    start, end = _period(since, until)
    return report(request.app.state.engine, since=start, until=end, by=_by(by)).as_dict()


@router.get("/api/reaction.csv")
def reaction_csv(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    by: str = "department",
    viewer: SessionUser = Depends(require("dashboard.read")),
) -> Response:
    start, end = _period(since, until)
    rep = report(request.app.state.engine, since=start, until=end, by=_by(by))
    name = f"reaction-{rep.by}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    return Response(
        to_csv(rep),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class OverdueCollector(Collector):
    """Open appeals past their first-reply deadline, per department, counted at scrape time
    in the database (so every process reports the same figure)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self):  # type: ignore[no-untyped-def]
        gauge = GaugeMetricFamily(
            "clienthub_appeals_overdue",
            "Open appeals past their first-reply deadline",
            labels=["department"],
        )
        try:
            with session_scope(self.engine, read_only=True) as s:
                counts = store.overdue_by_department(s, utcnow())
        except Exception:
            counts = {}
        for department, n in sorted(counts.items()):
            gauge.add_metric([department], n)
        yield gauge


_collector: list[OverdueCollector] = []


def register_collector(engine: Engine) -> None:
    """Add the gauge to /metrics (replacing the one of an earlier app in the same process)."""
    for old in _collector:
        REGISTRY.unregister(old)
    _collector.clear()
    collector = OverdueCollector(engine)
    REGISTRY.register(collector)
    _collector.append(collector)
