"""Dashboard figures: volumes per day, time to deal and to first reply (median, p90).

Aggregating a month of a million-row table on every page view takes seconds, so each Moscow day
is rolled up once into ``ui_daily_rollups`` (one indexed range read of that day's appeals) and
the page merges the rows of its period. A day is recomputed while it can still change: replies
and deliveries arrive after the day ends, so a rollup is final only once it was computed
``SETTLE`` after the day's end; before that it is refreshed when older than ``REFRESH``.
Today is always computed live.

Durations go into log-scale buckets (each 20 % wider than the last), so percentiles are within
about 10 % of the exact value and a period's figures are the sum of its days' buckets.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal_column, select, type_coerce
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.db import session_scope
from hub.models import Appeal, DailyRollup
from hub.models.types import JSONType
from hub.timeutil import as_utc, utcnow

ZONE = ZoneInfo("Europe/Moscow")
SETTLE = timedelta(days=3)
REFRESH = timedelta(minutes=15)
_BASE = 1.2
# Bumped when compute_day adds a figure: older rollups are computed again once (v2: "filter",
# appeals filtered per noise filter id, "" for a rule's own filter action).
ROLLUP_VERSION = 2
FILTER_TAG = "отфильтровано"  # hub/routing/engine.py tags a filtered appeal [FILTER_TAG, id]


def bucket(seconds: float) -> int:
    return 0 if seconds < 1 else int(math.log(seconds, _BASE)) + 1


def bucket_value(index: int) -> float:
    """The geometric middle of a bucket, in seconds."""
    return 0.5 if index == 0 else _BASE ** (index - 0.5)


def percentile(hist: dict[str, int] | Counter[int], q: float) -> float | None:
    items = sorted((int(k), n) for k, n in hist.items())
    total = sum(n for _, n in items)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, n in items:
        seen += n
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(items[-1][0])


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=ZONE)
    return start, start + timedelta(days=1)


def _seconds(session: Session, later: Any, earlier: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")


def compute_day(session: Session, day: date) -> dict[str, Any]:
    """One pass over the day's appeals (the ``received_at`` index)."""
    start, end = day_bounds(day)
    q = select(
        Appeal.channel, Appeal.region, Appeal.topic, Appeal.state, Appeal.filtered_reason,
        Appeal.department, Appeal.assignee_id, Appeal.assignee_name,
        _seconds(session, Appeal.crm_visible_at, Appeal.received_at),
        _seconds(session, Appeal.first_reply_at, Appeal.received_at),
        type_coerce(case((Appeal.filtered_reason.is_not(None), Appeal.tags), else_=None), JSONType),
    ).where(Appeal.received_at >= start, Appeal.received_at < end)  # fmt: skip
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    times: dict[str, dict[str, dict[str, Counter[int]]]] = {
        "department": defaultdict(lambda: {"deal": Counter(), "reply": Counter()}),
        "employee": defaultdict(lambda: {"deal": Counter(), "reply": Counter()}),
    }
    names: dict[str, str] = {}
    rows = session.execute(q)
    for ch, region, topic, state, reason, dept, emp, emp_name, ttd, ttr, tags in rows:
        counts["channel"][ch] += 1
        counts["region"][region or ""] += 1
        counts["topic"][topic or ""] += 1
        counts["state"][state] += 1
        if reason:
            counts["filtered"][reason] += 1
            by_filter = len(tags or ()) > 1 and tags[0] == FILTER_TAG
            counts["filter"][str(tags[1]) if by_filter else ""] += 1
        for dim, key in (("department", dept), ("employee", emp)):
            if not key:
                continue
            if ttd is not None and ttd >= 0:
                times[dim][key]["deal"][bucket(ttd)] += 1
            if ttr is not None and ttr >= 0:
                times[dim][key]["reply"][bucket(ttr)] += 1
        if emp and emp_name:
            names[emp] = emp_name
    return {
        "v": ROLLUP_VERSION,
        "counts": {dim: dict(c) for dim, c in counts.items()},
        "times": {
            dim: {
                k: {m: {str(b): n for b, n in h.items()} for m, h in v.items()}
                for k, v in d.items()
            }
            for dim, d in times.items()
        },
        "names": names,
    }


def _stale(row: DailyRollup | None, day: date, now: datetime) -> bool:
    if row is None:
        return True
    computed = as_utc(row.computed_at)
    end = day_bounds(day)[1]
    return computed < end + SETTLE and now - computed > REFRESH


def rollups(session: Session, days: list[date]) -> tuple[dict[date, dict[str, Any]], list[date]]:
    """Stored rollups of ``days``; the caller computes and saves the returned missing ones."""
    rows = session.execute(
        select(DailyRollup).where(DailyRollup.day.in_([d.isoformat() for d in days]))
    ).scalars()
    by_day = {date.fromisoformat(r.day): r for r in rows}
    now = utcnow()
    found = {
        d: r.data
        for d, r in by_day.items()
        if not _stale(r, d, now) and r.data.get("v") == ROLLUP_VERSION
    }
    return found, [d for d in days if d not in found]


def save_rollup(session: Session, day: date, data: dict[str, Any]) -> None:
    row = session.get(DailyRollup, day.isoformat())
    if row is None:
        row = DailyRollup(day=day.isoformat())
    row.data = data
    row.computed_at = utcnow()
    session.add(row)


def warm(engine: Engine, *, days: int = 180, limit: int = 31, now: datetime | None = None) -> int:
    """Compute missing or stale rollups of the past ``days`` (at most ``limit`` a call, newest
    first), so that no dashboard view pays for them: run by the scheduler leader. Returns how
    many it computed."""
    now = now or utcnow()
    today = now.astimezone(ZONE).date()
    span = [today - timedelta(days=i) for i in range(1, days + 1)]
    with session_scope(engine, read_only=True) as s:
        _found, missing = rollups(s, span)
    done = 0
    for day in missing[:limit]:
        with session_scope(engine) as s:  # one day a transaction: short writer locks
            save_rollup(s, day, compute_day(s, day))
        done += 1
    return done


@dataclass
class Period:
    days: list[date]
    per_day: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # dim->key->day
    totals: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    times: dict[str, dict[str, dict[str, Counter[int]]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


class Sums:
    """Days added up. Histograms are kept per key for every key; :func:`finish` merges only
    the busiest keys' (the tables show those), so adding a day stays cheap."""

    def __init__(self) -> None:
        self.per_day: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        self.totals: dict[str, Counter[str]] = defaultdict(Counter)
        self.volume: dict[str, Counter[str]] = defaultdict(Counter)
        self.hists: dict[str, dict[str, dict[str, Counter[int]]]] = defaultdict(dict)
        self.names: dict[str, str] = {}

    def add(self, day: date, item: dict[str, Any]) -> None:
        stamp = day.isoformat()
        for dim, counter in item.get("counts", {}).items():
            for key, n in counter.items():
                self.per_day[dim][key][stamp] = n
                self.totals[dim][key] += n
        for dim, by_key in item.get("times", {}).items():
            for key, measures in by_key.items():
                slot = self.hists[dim].setdefault(key, {"deal": Counter(), "reply": Counter()})
                for measure, hist in measures.items():
                    acc = slot[measure]
                    for b, n in hist.items():
                        acc[int(b)] += n
                self.volume[dim][key] += sum(measures.get("deal", {}).values())
        self.names.update(item.get("names", {}))


def finish(days: list[date], parts: list[Sums], top: dict[str, int] | None = None) -> Period:
    """One period from several sums (cached settled days, recent days, today); they are read,
    never changed."""
    top = top or {}
    period = Period(days=days)
    per_day: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    volume: dict[str, Counter[str]] = defaultdict(Counter)
    for part in parts:
        for dim, by_key in part.per_day.items():
            for key, by_day in by_key.items():
                per_day[dim][key].update(by_day)
        for dim, counter in part.totals.items():
            totals[dim].update(counter)
        for dim, counter in part.volume.items():
            volume[dim].update(counter)
        period.names.update(part.names)
    times: dict[str, dict[str, dict[str, Counter[int]]]] = defaultdict(dict)
    for dim, counter in volume.items():
        for key, _n in counter.most_common(top.get(dim)):
            slot = {"deal": Counter(), "reply": Counter()}
            for part in parts:
                found = part.hists.get(dim, {}).get(key)
                if found:
                    slot["deal"].update(found["deal"])
                    slot["reply"].update(found["reply"])
            times[dim][key] = slot
    period.per_day, period.totals, period.times = per_day, totals, times
    return period


def merge(
    days: list[date], data: dict[date, dict[str, Any]], top: dict[str, int] | None = None
) -> Period:
    sums = Sums()
    for day in days:
        sums.add(day, data.get(day) or {})
    return finish(days, [sums], top)


def settled(day: date, now: datetime) -> bool:
    """Its rollup, once computed now, is final."""
    return day_bounds(day)[1] + SETTLE <= now
