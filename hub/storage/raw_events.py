"""Store raw events idempotently on (channel, source, external_id), with their parse job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.models import Job, JobState, RawEvent, RejectedRequest
from hub.timeutil import utcnow

PARSE_JOB = "parse.event"
_raw = RawEvent.__table__
_jobs = Job.__table__
_rejected = RejectedRequest.__table__


@dataclass
class IncomingEvent:
    channel: str
    source: str
    external_id: str | None
    event_type: str | None
    headers: dict[str, Any]
    content_type: str | None
    body: bytes
    received_at: datetime = field(default_factory=utcnow)


@dataclass
class Rejection:
    path: str
    status_code: int
    reason: str
    channel: str | None = None
    source: str | None = None
    remote_addr: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    body_excerpt: bytes | None = None
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Stored:
    raw_event_id: int
    duplicate: bool


def store_event(conn: Connection, ev: IncomingEvent) -> Stored:
    """Insert the raw event and its parse job; a repeat of a platform id returns the first row."""
    values = {
        "channel": ev.channel,
        "source": ev.source,
        "external_id": ev.external_id,
        "event_type": ev.event_type,
        "headers": ev.headers,
        "content_type": ev.content_type,
        "body": ev.body,
        "received_at": ev.received_at,
        "state": "received",
    }
    if ev.external_id is None:
        raw_id = conn.execute(insert(_raw).values(**values).returning(_raw.c.id)).scalar_one()
    else:
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_raw)
        stmt = (
            ins.values(**values)
            .on_conflict_do_nothing(
                index_elements=["channel", "source", "external_id"],
                index_where=text("external_id IS NOT NULL"),
            )
            .returning(_raw.c.id)
        )
        raw_id = conn.execute(stmt).scalar()
        if raw_id is None:
            existing = conn.execute(
                select(_raw.c.id).where(
                    _raw.c.channel == ev.channel,
                    _raw.c.source == ev.source,
                    _raw.c.external_id == ev.external_id,
                )
            ).scalar_one()
            return Stored(existing, True)
    now = utcnow()
    conn.execute(
        insert(_jobs).values(
            kind=PARSE_JOB,
            key=f"raw:{raw_id}",
            payload={"raw_event_id": raw_id},
            state=JobState.queued.value,
            attempts=0,
            run_at=now,
            created_at=now,
        )
    )
    return Stored(raw_id, False)


def store_rejection(conn: Connection, rej: Rejection) -> None:
    conn.execute(
        insert(_rejected).values(
            channel=rej.channel,
            source=rej.source,
            path=rej.path[:512],
            status_code=rej.status_code,
            reason=rej.reason,
            remote_addr=rej.remote_addr,
            content_type=(rej.content_type or None) and rej.content_type[:255],
            content_length=rej.content_length,
            headers=rej.headers,
            body_excerpt=rej.body_excerpt,
            received_at=rej.received_at,
        )
    )


def get(session: Session, raw_event_id: int) -> RawEvent | None:
    return session.get(RawEvent, raw_event_id)


def set_state(session: Session, *, raw_event_id: int, state: str, reason: str | None) -> None:
    session.execute(
        update(RawEvent).where(RawEvent.id == raw_event_id).values(state=state, state_reason=reason)
    )
