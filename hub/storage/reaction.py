"""Reaction-time figures: how fast customers got a first answer, by channel, region,
department, employee, topic or week, and what is overdue now.

The rows of a period are read with one range scan (``received_at``), only the columns needed;
the median and the 90th percentile are computed here in Python, exactly, the same way on SQLite
and PostgreSQL (SQLite has no percentile function). Definitions, also in docs/reaction_time.md:
- first-reply time: ``first_reply_at - received_at``, wall-clock minutes (what the customer
  waited); median and p90 over the answered appeals; p90 is the nearest rank, ceil(0.9·n);
- within target: answered no later than ``reply_due_at``, out of the appeals with a target whose
  fate is known (answered, or due already): open appeals not yet due are not counted;
- overdue now: open (routed or delivered), unanswered and past ``reply_due_at``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from hub.models import Appeal, AppealState
from hub.storage.escalations import OPEN_STATES
from hub.timeutil import as_utc

DIMENSIONS = ("channel", "region", "department", "employee", "topic", "week")
WEEK_ZONE = ZoneInfo("Europe/Moscow")  # weeks start on Monday, Moscow time
TOTAL = "*"


@dataclass(frozen=True)
class ReactionRow:
    received_at: datetime
    first_reply_at: datetime | None
    reply_due_at: datetime | None
    is_open: bool
    channel: str
    region: str | None
    department: str | None
    employee: str | None
    employee_name: str | None
    topic: str | None

    def key(self, by: str) -> str:
        if by == "week":
            return week_of(self.received_at)
        value = self.employee if by == "employee" else getattr(self, by)
        return value or ""

    def wait_minutes(self) -> float | None:
        if self.first_reply_at is None:
            return None
        return max(0.0, (self.first_reply_at - self.received_at) / timedelta(minutes=1))


@dataclass
class Figures:
    key: str
    name: str
    appeals: int = 0
    answered: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None
    with_target: int = 0  # appeals with a deadline whose outcome is known
    within_target: int = 0
    overdue_now: int = 0

    @property
    def within_share(self) -> float | None:
        return self.within_target / self.with_target if self.with_target else None

    def as_dict(self) -> dict[str, object]:
        share = self.within_share
        return {
            "key": self.key,
            "name": self.name,
            "appeals": self.appeals,
            "answered": self.answered,
            "median_minutes": _round(self.median_minutes),
            "p90_minutes": _round(self.p90_minutes),
            "with_target": self.with_target,
            "within_target": self.within_target,
            "within_target_share": None if share is None else round(share, 4),
            "overdue_now": self.overdue_now,
        }


def week_of(moment: datetime) -> str:
    year, week, _day = as_utc(moment).astimezone(WEEK_ZONE).isocalendar()
    return f"{year}-W{week:02d}"


def rows(session: Session, *, since: datetime, until: datetime) -> list[ReactionRow]:
    """Appeals received in ``[since, until)`` that were routed (filtered ones are not waiting
    for anyone)."""
    q = (
        select(
            Appeal.received_at,
            Appeal.first_reply_at,
            Appeal.reply_due_at,
            Appeal.state,
            Appeal.channel,
            Appeal.region,
            Appeal.department,
            Appeal.assignee_id,
            Appeal.assignee_name,
            Appeal.topic,
        )
        .where(Appeal.received_at >= since, Appeal.received_at < until)
        .where(Appeal.state.not_in([AppealState.filtered.value, AppealState.new.value]))
        .order_by(Appeal.received_at, Appeal.id)
    )
    return [
        ReactionRow(
            received_at=as_utc(r[0]),
            first_reply_at=as_utc(r[1]) if r[1] else None,
            reply_due_at=as_utc(r[2]) if r[2] else None,
            is_open=r[3] in OPEN_STATES,
            channel=r[4],
            region=r[5],
            department=r[6],
            employee=r[7],
            employee_name=r[8],
            topic=r[9],
        )
        for r in session.execute(q)
    ]


def figures(
    items: Iterable[ReactionRow], *, by: str, now: datetime, names: dict[str, str] | None = None
) -> tuple[Figures, list[Figures]]:
    """The total and one line per value of ``by`` (sorted by key)."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; one of {', '.join(DIMENSIONS)}")
    now = as_utc(now)
    names = names or {}
    groups: dict[str, list[ReactionRow]] = defaultdict(list)
    everything: list[ReactionRow] = []
    for row in items:
        groups[row.key(by)].append(row)
        everything.append(row)
        if by == "employee" and row.employee and row.employee_name:
            names.setdefault(row.employee, row.employee_name)
    total = _figures(TOTAL, "Всего", everything, now)
    lines = [_figures(k, names.get(k, k) or "—", groups[k], now) for k in sorted(groups)]
    return total, lines


def _figures(key: str, name: str, items: list[ReactionRow], now: datetime) -> Figures:
    out = Figures(key=key, name=name, appeals=len(items))
    waits = sorted(w for w in (r.wait_minutes() for r in items) if w is not None)
    out.answered = len(waits)
    if waits:
        out.median_minutes = statistics.median(waits)
        out.p90_minutes = waits[math.ceil(0.9 * len(waits)) - 1]
    for r in items:
        if r.reply_due_at is None:
            continue
        if r.first_reply_at is not None:
            out.with_target += 1
            out.within_target += r.first_reply_at <= r.reply_due_at
        elif r.reply_due_at < now:
            out.with_target += 1
            out.overdue_now += r.is_open
    return out


def overdue_by_department(session: Session, now: datetime) -> dict[str, int]:
    """Open, unanswered appeals past their deadline, per department ("" for none): the
    ``(state, reply_due_at)`` index answers it at any table size. Grouping by an expression, not
    the bare column, keeps SQLite from walking ``ix_appeals_department_id`` over every row to
    avoid a sort (3.9 s at a million appeals, measured by benchmarks/ui.py)."""
    department = func.coalesce(Appeal.department, "")
    q = (
        select(department, func.count())
        .where(Appeal.state.in_(OPEN_STATES))
        .where(Appeal.reply_due_at < now)
        .where(Appeal.first_reply_at.is_(None))
        .group_by(department)
    )
    return {dept or "": int(n) for dept, n in session.execute(q)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
