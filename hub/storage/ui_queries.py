"""Reads and small writes for the admin UI: appeal lists at a million rows, an appeal's history,
dead letters, channel health, the audit log. Nothing here commits.

Every list is newest first with a keyset cursor (``before_id``): page 1,000 costs what page 1
costs. Each filter has an ``(column, id)`` index (``hub/models/appeal.py``); text search runs on
the full-text index (``hub/storage/search.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlmodel import Session

from hub.models import (
    Appeal,
    AuditEntry,
    ChannelSource,
    CrmLink,
    Job,
    RateBucket,
    RawEvent,
    RejectedRequest,
    Reply,
)
from hub.storage import search
from hub.timeutil import as_utc, utcnow

NONE = "__none__"  # a filter value meaning "not determined" (IS NULL)


def add_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details or {},
        )
    )


@dataclass
class UiAppealFilter:
    channel: str | None = None
    source: str | None = None
    kind: str | None = None
    region: str | None = None
    topic: str | None = None
    department: str | None = None
    assignee: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None

    def active(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


_COLUMNS = {
    "channel": Appeal.channel,
    "source": Appeal.source,
    "kind": Appeal.kind,
    "region": Appeal.region,
    "topic": Appeal.topic,
    "department": Appeal.department,
    "assignee": Appeal.assignee_id,
    "state": Appeal.state,
}
_LIST_COLUMNS = (
    Appeal.id,
    Appeal.received_at,
    Appeal.channel,
    Appeal.source,
    Appeal.kind,
    Appeal.author_name,
    func.substr(Appeal.text, 1, 160).label("excerpt"),
    Appeal.state,
    Appeal.topic,
    Appeal.region,
    Appeal.department,
    Appeal.assignee_name,
    Appeal.delivery_state,
    Appeal.filtered_reason,
)


@dataclass
class AppealPage:
    rows: list[Any]
    next_cursor: str | None  # the cursor of the next (older) page, if any


def _cursor(row: Any, by_time: bool) -> str:
    return f"{row.received_at.isoformat()}~{row.id}" if by_time else str(row.id)


PERIOD_SCAN = 50_000


def _period_ids(session: Session, flt: UiAppealFilter) -> tuple[int, int] | None:
    """The lowest and highest id received in the period, when it holds at most PERIOD_SCAN
    appeals (a covering read of ``(received_at, id)``). SQLite's full-text index reads matches
    in id order, so a search within a few days reads only that id span instead of every match;
    a longer period is left alone (its matches are most of them anyway)."""
    ids = select(Appeal.id)
    if flt.since:
        ids = ids.where(Appeal.received_at >= flt.since)
    if flt.until:
        ids = ids.where(Appeal.received_at < flt.until)
    part = ids.limit(PERIOD_SCAN + 1).subquery()
    low, high, n = session.execute(
        select(func.min(part.c.id), func.max(part.c.id), func.count())
    ).one()
    if n > PERIOD_SCAN:
        return None
    return (int(low), int(high)) if n else (1, 0)


def _moment(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:  # a hand-edited cursor: start from the top rather than fail
        return None


def appeal_page(
    session: Session, *, flt: UiAppealFilter, limit: int = 50, cursor: str | None = None
) -> AppealPage:
    """Newest first. With a period the list runs in receive order on ``(received_at, id)`` (a
    late-polled review still shows in its own day), and its cursor carries both; otherwise on
    ids. A text search reads the full-text index in id order (SQLite: backwards, stopping at
    the page's last row); a text search over a period reads it a window of days at a time."""
    by_time = bool(flt.since or flt.until)
    if by_time and flt.q and flt.q.strip():
        rows = _windowed(session, flt, limit + 1, cursor)
    else:
        rows = _rows(session, flt, limit + 1, cursor)
    if len(rows) > limit:
        return AppealPage(rows[:limit], _cursor(rows[limit - 1], by_time))
    return AppealPage(rows, None)


FIRST_WINDOW = timedelta(days=1)


def _windowed(session: Session, flt: UiAppealFilter, take: int, cursor: str | None) -> list[Any]:
    """A search in receive order over a period, newest window first (a day, then two, four…
    back to the period's start): the page is full after the first window or two, where
    sorting every match of a common word over months by time would read them all. Exact:
    every row of a later window sorts before every row of an earlier one."""
    moment = _moment(cursor.rpartition("~")[0]) if cursor else None
    bounds = select(Appeal.received_at).limit(1)
    if flt.since:
        bounds = bounds.where(Appeal.received_at >= flt.since)
    if flt.until:
        bounds = bounds.where(Appeal.received_at < flt.until)
    # Two index seeks: min() and max() in one query would read the whole period.
    first = session.execute(bounds.order_by(Appeal.received_at)).scalar()
    last = session.execute(bounds.order_by(Appeal.received_at.desc())).scalar()
    if first is None or last is None:
        return []
    floor = as_utc(first)
    high = as_utc(last) + timedelta(microseconds=1)  # exclusive
    if moment is not None:
        high = min(high, as_utc(moment) + timedelta(microseconds=1))
    rows: list[Any] = []
    span = FIRST_WINDOW
    while high > floor and len(rows) < take:
        low = max(high - span, floor)
        window = replace(flt, since=low, until=high)
        rows += _rows(session, window, take - len(rows), cursor)
        high, span = low, span * 2
    return rows


def _rows(session: Session, flt: UiAppealFilter, take: int, cursor: str | None) -> list[Any]:
    by_time = bool(flt.since or flt.until)
    q = select(*_LIST_COLUMNS).limit(take)
    for name, column in _COLUMNS.items():
        value = getattr(flt, name)
        if value == NONE:
            q = q.where(column.is_(None))
        elif value:
            q = q.where(column == value)
    if flt.since:
        q = q.where(Appeal.received_at >= flt.since)
    if flt.until:
        q = q.where(Appeal.received_at < flt.until)
    id_order: Any = Appeal.id
    if flt.q and flt.q.strip():
        dialect = session.get_bind().dialect.name
        q, id_order = search.restrict(q, dialect, flt.q)
        span = _period_ids(session, flt) if by_time and dialect == "sqlite" else None
        if span is not None:
            q = q.where(id_order.between(*span))
    order = (Appeal.received_at.desc(), id_order.desc()) if by_time else (id_order.desc(),)
    q = q.order_by(*order)
    if cursor:
        at, _, raw_id = cursor.rpartition("~")
        before_id = int(raw_id) if raw_id.isdigit() else None
        moment = _moment(at) if by_time else None
        if moment is not None and before_id is not None:
            q = q.where(
                Appeal.received_at <= moment,
                ~and_(Appeal.received_at == moment, id_order >= before_id),
            )
        elif before_id is not None and not by_time:
            q = q.where(id_order < before_id)
    return list(session.execute(q).all())


def appeal_jobs(session: Session, appeal_id: int) -> list[Job]:
    """Delivery and reply jobs of one appeal, oldest first."""
    q = select(Job).where(Job.appeal_id == appeal_id).order_by(Job.id)
    return list(session.execute(q).scalars())


def appeal_replies(session: Session, appeal_id: int) -> list[Reply]:
    """Staff answers to this appeal and how each reached (or did not reach) the customer."""
    q = select(Reply).where(Reply.appeal_id == appeal_id).order_by(Reply.id)
    return list(session.execute(q).scalars())


def appeal_crm_links(session: Session, appeal_id: int) -> list[CrmLink]:
    q = select(CrmLink).where(CrmLink.appeal_id == appeal_id).order_by(CrmLink.id)
    return list(session.execute(q).scalars())


def thread_appeals(session: Session, appeal: Appeal, limit: int = 20) -> list[Appeal]:
    """Other messages of the same conversation (follow-ups go to the same deal)."""
    if not appeal.thread_key:
        return []
    q = (
        select(Appeal)
        .where(
            Appeal.channel == appeal.channel,
            Appeal.source == appeal.source,
            Appeal.thread_key == appeal.thread_key,
            Appeal.id != appeal.id,
        )
        .order_by(Appeal.id.desc())
        .limit(limit)
    )
    return list(session.execute(q).scalars())


def raw_event(session: Session, raw_event_id: int | None) -> RawEvent | None:
    return None if raw_event_id is None else session.get(RawEvent, raw_event_id)


# Jobs ------------------------------------------------------------------------------------------


DONE_CAP = 10_000
_LIVE_STATES = ("queued", "running", "dead")
_KINDS = text(
    "WITH RECURSIVE k(kind) AS (SELECT min(kind) FROM jobs UNION ALL "
    "SELECT (SELECT min(kind) FROM jobs WHERE jobs.kind > k.kind) FROM k WHERE k.kind IS NOT NULL)"
    " SELECT kind FROM k WHERE kind IS NOT NULL"
)


def job_counts(session: Session) -> dict[tuple[str, str], int]:
    """Jobs per (kind, state) without reading the history: queued, running and dead exactly
    (ranges of the state index, small unless something is wrong), done up to ``DONE_CAP + 1``
    per kind (more reads as "over DONE_CAP"). Kinds come from a skip scan of ``(kind, key)``:
    one seek per kind, not a GROUP BY over millions of done jobs."""
    counts: dict[tuple[str, str], int] = {
        (kind, state): int(n)
        for kind, state, n in session.execute(
            select(Job.kind, Job.state, func.count())
            .where(Job.state.in_(_LIVE_STATES))
            .group_by(Job.kind, Job.state)
        )
    }
    for (kind,) in session.execute(_KINDS).all():
        done = select(Job.id).where(Job.kind == kind, Job.state == "done").limit(DONE_CAP + 1)
        n = session.execute(select(func.count()).select_from(done.subquery())).scalar() or 0
        if n:
            counts[(kind, "done")] = int(n)
    return counts


def jobs_page(
    session: Session,
    *,
    state: str | None,
    kind: str | None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Job]:
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        q = q.where(Job.state == state)
    if kind:
        q = q.where(Job.kind == kind)
    if before_id is not None:
        q = q.where(Job.id < before_id)
    return list(session.execute(q).scalars())


def rate_buckets(session: Session) -> list[RateBucket]:
    return list(session.execute(select(RateBucket).order_by(RateBucket.name)).scalars())


# Channels --------------------------------------------------------------------------------------


@dataclass
class SourceHealth:
    last_event_at: datetime | None
    last_event_state: str | None
    rejected_24h: int
    last_rejection: str | None


def source_health(session: Session, sources: list[ChannelSource]) -> dict[int, SourceHealth]:
    """Last stored event and recent refusals per configured source: one seek of
    ``ix_raw_events_source_id`` per source, refusals from the last day by time."""
    since = utcnow() - timedelta(hours=24)
    rejected: dict[tuple[str | None, str | None], tuple[int, str | None]] = {}
    for channel, source, n, last_id in session.execute(
        select(
            RejectedRequest.channel,
            RejectedRequest.source,
            func.count(),
            func.max(RejectedRequest.id),
        )
        .where(RejectedRequest.received_at >= since)
        .group_by(RejectedRequest.channel, RejectedRequest.source)
    ):
        last = session.get(RejectedRequest, last_id)
        reason = f"{last.status_code}: {last.reason}" if last else None
        rejected[(channel, source)] = (int(n), reason)
    out: dict[int, SourceHealth] = {}
    for src in sources:
        last_id = session.execute(
            select(func.max(RawEvent.id)).where(
                RawEvent.channel == src.channel, RawEvent.source == src.source
            )
        ).scalar()
        last = session.get(RawEvent, last_id) if last_id else None
        n, reason = rejected.get((src.channel, src.source), (0, None))
        assert src.id is not None
        out[src.id] = SourceHealth(
            last.received_at if last else None, last.state if last else None, n, reason
        )
    return out


# Audit -----------------------------------------------------------------------------------------


def audit_page(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action.like(f"{action}%"))
    if object_type:
        q = q.where(AuditEntry.object_type == object_type)
    if before_id is not None:
        q = q.where(AuditEntry.id < before_id)
    return list(session.execute(q).scalars())


def audit_entry(session: Session, entry_id: int) -> AuditEntry | None:
    return session.get(AuditEntry, entry_id)
