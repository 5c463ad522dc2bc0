"""The latest routed appeals as routing reads them, for "test the draft" (hub/ui/draft_runs.py).

Up to 20,000 appeals are decided again by two rule versions. Loading them as full rows would
also read what routing never looks at (stored traces, targets, delivery figures) and hold all of
it at once; this reads only the columns a decision uses, in id-ordered chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from hub.models import Appeal


@dataclass(frozen=True)
class SampleAppeal:
    """What routing reads of an appeal, plus what the result page shows of it."""

    id: int
    channel: str
    source: str
    kind: str
    text: str
    author_name: str | None
    author_phone: str | None
    author_email: str | None
    author_platform_id: str | None
    fields: dict[str, Any]
    rating: int | None
    received_at: datetime | None


_COLUMNS = (
    Appeal.id,
    Appeal.channel,
    Appeal.source,
    Appeal.kind,
    Appeal.text,
    Appeal.author_name,
    Appeal.author_phone,
    Appeal.author_email,
    Appeal.author_platform_id,
    Appeal.fields,
    Appeal.rating,
    Appeal.received_at,
)


@dataclass(frozen=True)
class Window:
    """The ids of the newest ``count`` routed appeals lie in ``first_id..last_id``."""

    first_id: int
    last_id: int
    count: int


def latest_window(session: Session, limit: int) -> Window | None:
    """Where the newest ``limit`` routed appeals (filtered ones too) are; None when there are
    none. Fixed at the start, so appeals arriving during a test do not shift it."""
    newest = (
        select(Appeal.id)
        .where(Appeal.rules_version.is_not(None))  # type: ignore[union-attr]
        .order_by(Appeal.id.desc())  # type: ignore[union-attr]
        .limit(limit)
        .subquery()
    )
    low, high, count = session.execute(
        select(func.min(newest.c.id), func.max(newest.c.id), func.count())
    ).one()
    return Window(int(low), int(high), int(count)) if count else None


def rows_after(session: Session, window: Window, after_id: int, limit: int) -> list[SampleAppeal]:
    """The next ``limit`` routed appeals of ``window`` after ``after_id``, oldest first (the
    order they arrived in, which round-robin turns and loads depend on)."""
    query = (
        select(*_COLUMNS)
        .where(Appeal.id > after_id, Appeal.id <= window.last_id)  # type: ignore[operator]
        .where(Appeal.rules_version.is_not(None))  # type: ignore[union-attr]
        .order_by(Appeal.id)
        .limit(limit)
    )
    return [SampleAppeal(*row) for row in session.execute(query)]
