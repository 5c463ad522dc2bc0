"""The dashboard: volumes per day by channel, region and topic; time to deal and to first
reply by department and employee; filtered and spam counts. Figures come from per-day
rollups (``hub/storage/dashboard.py``); charts are drawn by Chart.js in the browser."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.http import reaction
from hub.storage import dashboard as store
from hub.storage.users import SessionUser
from hub.timeutil import utcnow
from hub.ui.labels import labels
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui")
PERIODS = (7, 30, 90, 180)
PALETTE = ["#2463d6", "#1d7f4e", "#c0392b", "#a86400", "#7b3fb3", "#0f8a9d", "#d35400",
           "#34495e", "#b8860b", "#16a085", "#8e44ad", "#7f8c8d"]  # fmt: skip


@router.get("/")
def home(request: Request, viewer: SessionUser = Depends(require("dashboard.read"))) -> Response:
    """Every role may see the dashboard: it is the landing page."""
    return RedirectResponse("/ui/dashboard", status_code=303)


_today: dict[tuple[str, date], tuple[float, dict[str, Any]]] = {}
_settled: dict[tuple[str, date, date], store.Sums] = {}
TODAY_TTL = 60.0  # seconds: today's figures on the dashboard are at most a minute old
TOP = {"department": 20, "employee": 30}


def period_figures(engine: Engine, days: int) -> store.Period:
    """Past days from their rollups (computing the missing ones), today live (a minute's cache).
    Days past ``SETTLE`` never change, so their sum is kept in memory per period; a view reads
    only the last few days' rows."""
    now = utcnow()
    today = now.astimezone(store.ZONE).date()
    span = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    old = [d for d in span[:-1] if store.settled(d, now)]
    recent = [d for d in span[:-1] if d not in old]
    key = (str(engine.url), old[0], old[-1]) if old else None
    base = _settled.get(key) if key else None
    cached = _today.get((str(engine.url), today))
    with session_scope(engine, read_only=True) as s:
        found, missing = store.rollups(s, recent if base is not None else span[:-1])
        fresh = {d: store.compute_day(s, d) for d in missing}
        if cached is None or time.monotonic() - cached[0] > TODAY_TTL:
            cached = (time.monotonic(), store.compute_day(s, today))
            _today.clear()
            _today[(str(engine.url), today)] = cached
    if fresh:
        with session_scope(engine) as s:
            for day, data in fresh.items():
                store.save_rollup(s, day, data)
    data = {**found, **fresh, today: cached[1]}
    if base is None:
        base = store.Sums()
        for day in old:
            base.add(day, data[day])
        if key is not None:
            if len(_settled) >= 8:
                _settled.clear()
            _settled[key] = base
    extra = store.Sums()
    for day in [*recent, today]:
        extra.add(day, data.get(day) or {})
    return store.finish(span, [base, extra], TOP)


def _series(period: store.Period, dim: str, names: dict[str, str], top: int) -> dict[str, Any]:
    keys = [k for k, _ in period.totals[dim].most_common(top)]
    labels_ = [d.strftime("%d.%m") for d in period.days]
    datasets = [
        {
            "label": names.get(k, k) or "—",
            "data": [period.per_day[dim][k].get(d.isoformat(), 0) for d in period.days],
            "backgroundColor": PALETTE[i % len(PALETTE)],
            "borderColor": PALETTE[i % len(PALETTE)],
        }
        for i, k in enumerate(keys)
    ]
    return {"type": "bar", "stacked": True, "labels": labels_, "datasets": datasets}


def _times(period: store.Period, dim: str, names: dict[str, str], top: int) -> list[Any]:
    rows = []
    for key, m in period.times.get(dim, {}).items():
        n = sum(m["deal"].values())
        deal, reply = m["deal"], m["reply"]
        rows.append(
            (
                names.get(key, key),
                n,
                store.percentile(deal, 0.5),
                store.percentile(deal, 0.9),
                sum(reply.values()),
                store.percentile(reply, 0.5),
                store.percentile(reply, 0.9),
            )
        )
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def _filters(period: store.Period, names: dict[str, str]) -> list[tuple[str, str, int]]:
    """(filter id, reason, count) for every noise filter of the rules in force — spam, contests,
    the blacklist — zeros included, then filters no longer in force and the rules' own filter
    actions (id "")."""
    seen = period.totals.get("filter", Counter())
    rows = [(fid, reason, seen.get(fid, 0)) for fid, reason in names.items()]
    rows += [(fid, fid, n) for fid, n in seen.most_common() if fid and fid not in names]
    if seen.get(""):
        rows.append(("", "", seen[""]))
    return rows


@router.get("/dashboard")
def dashboard(
    request: Request, days: int = 30, viewer: SessionUser = Depends(require("dashboard.read"))
) -> Response:
    days = days if days in PERIODS else 30
    engine = request.app.state.engine
    period = period_figures(engine, days)
    names = labels(engine)
    employees = {**period.names, **names.employees}
    charts = {
        "chart-channel": _series(period, "channel", {}, 10),
        "chart-region": _series(period, "region", names.regions, 8),
        "chart-topic": _series(period, "topic", names.topics, 10),
    }
    total = sum(period.totals["channel"].values())
    # Inside <script>: "</" must not close the tag (labels come from the rule directory).
    chart_json = {
        k: json.dumps(v, ensure_ascii=False).replace("</", "<\\/") for k, v in charts.items()
    }
    return render(
        request, "pages/dashboard.html", nav="dashboard", days=days, periods=PERIODS,
        total=total, period=period, names=names, charts=chart_json,
        departments=_times(period, "department", names.departments, 20),
        employees=_times(period, "employee", employees, 30),
        filters=_filters(period, names.filters),
        states=period.totals["state"],
        first_day=period.days[0] if period.days else date.today(),
    )  # fmt: skip


@router.get("/dashboard/overdue")
def overdue(
    request: Request, since: str = "", viewer: SessionUser = Depends(require("dashboard.read"))
) -> Response:
    """Reaction time: first replies past their deadline now (an htmx fragment of the dashboard,
    so its query never holds the page back)."""
    rows = reaction.overdue_now(request.app.state.engine)
    return render(
        request, "partials/overdue.html", overdue=rows, total=sum(n for _, n in rows), since=since
    )
