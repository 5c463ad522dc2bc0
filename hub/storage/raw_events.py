"""Store raw events idempotently on (channel, source, external_id), with their parse job."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


def _db_time(value: datetime, dialect: str) -> object:
    # Matches what UTCDateTime writes through the ORM, so both paths read back alike.
    if dialect == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def store_events_bulk(conn: Connection, events: list[IncomingEvent]) -> list[Stored]:
    """The group-commit path: a whole batch in three statements instead of three per event.

    Raw DBAPI SQL, because building a multi-row statement through the SQL compiler costs more per
    batch than the database does. Events without a platform id take the one-by-one path.
    """
    dialect = conn.dialect.name
    results: dict[int, Stored] = {}
    keyed: dict[tuple[str, str, str], list[int]] = {}
    for i, ev in enumerate(events):
        if ev.external_id is None:
            results[i] = store_event(conn, ev)
        else:
            keyed.setdefault((ev.channel, ev.source, ev.external_id), []).append(i)
    if keyed:
        ph = "?" if dialect == "sqlite" else "%s"
        js = ph if dialect == "sqlite" else "%s::json"
        row_sql = f"({ph},{ph},{ph},{ph},{js},{ph},{ph},{ph},'received')"
        params: list[object] = []
        for idxs in keyed.values():
            ev = events[idxs[0]]
            params += [
                ev.channel,
                ev.source,
                ev.external_id,
                ev.event_type,
                json.dumps(ev.headers, ensure_ascii=False),
                ev.content_type,
                ev.body,
                _db_time(ev.received_at, dialect),
            ]
        sql = (
            "INSERT INTO raw_events (channel, source, external_id, event_type, headers, "
            "content_type, body, received_at, state) VALUES "
            + ",".join([row_sql] * len(keyed))
            + " ON CONFLICT (channel, source, external_id) WHERE external_id IS NOT NULL "
            "DO NOTHING RETURNING id, channel, source, external_id"
        )
        inserted = {
            (c, s, e): rid for rid, c, s, e in conn.exec_driver_sql(sql, tuple(params)).fetchall()
        }
        missing = [k for k in keyed if k not in inserted]
        existing: dict[tuple[str, str, str], int] = {}
        for channel, source, external_id in missing:  # platform retries: rare, one lookup each
            existing[(channel, source, external_id)] = conn.execute(
                select(_raw.c.id).where(
                    _raw.c.channel == channel,
                    _raw.c.source == source,
                    _raw.c.external_id == external_id,
                )
            ).scalar_one()
        for key, idxs in keyed.items():
            if key in inserted:
                results[idxs[0]] = Stored(inserted[key], False)
                dupes = idxs[1:]
                raw_id = inserted[key]
            else:
                dupes = idxs
                raw_id = existing[key]
            for i in dupes:
                results[i] = Stored(raw_id, True)
        if inserted:
            now = _db_time(utcnow(), dialect)
            job_row = f"('{PARSE_JOB}',{ph},{js},'queued',0,{ph},{ph})"
            job_params: list[object] = []
            for rid in inserted.values():
                job_params += [f"raw:{rid}", json.dumps({"raw_event_id": rid}), now, now]
            conn.exec_driver_sql(
                "INSERT INTO jobs (kind, key, payload, state, attempts, run_at, created_at) VALUES "
                + ",".join([job_row] * len(inserted)),
                tuple(job_params),
            )
    return [results[i] for i in range(len(events))]
