"""Raw events no connector could turn into appeals: kept, counted and listed, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal_column, select
from sqlmodel import Session

from hub.models import RawEvent, RawEventState


@dataclass(frozen=True)
class UnsupportedKind:
    channel: str
    source: str
    event_type: str | None
    count: int
    last_id: int
    last_received_at: datetime


def summary(session: Session, *, channel: str | None = None) -> list[UnsupportedKind]:
    """One row per (channel, source, event type) with how many arrived and the latest one.

    Reads the partial index ``ix_raw_events_unsupported`` (migration 0004), which holds only
    these events; the state is written literally so that both planners can prove the index's
    condition (a bound parameter would not), instead of scanning every raw event."""
    q = (
        select(
            RawEvent.channel,
            RawEvent.source,
            RawEvent.event_type,
            func.count(),
            func.max(RawEvent.id),
            func.max(RawEvent.received_at),
        )
        .where(RawEvent.state == literal_column(f"'{RawEventState.unsupported.value}'"))
        .group_by(RawEvent.channel, RawEvent.source, RawEvent.event_type)
        .order_by(RawEvent.channel, RawEvent.source, RawEvent.event_type)
    )
    if channel:
        q = q.where(RawEvent.channel == channel)
    return [UnsupportedKind(*row) for row in session.execute(q).all()]
