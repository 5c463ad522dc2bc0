"""Appeals: insert from a parsed event, apply a routing decision, list with keyset pagination."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from connectors.base import ParsedAppeal, RawEventView
from hub.models import Appeal, AppealState
from hub.routing.types import Decision
from hub.storage.escalations import apply_sla
from hub.timeutil import utcnow


def insert_parsed(session: Session, *, event: RawEventView, parsed: ParsedAppeal) -> Appeal | None:
    """Insert one appeal; None when the same platform message is already stored (a retry that
    arrived as a different raw event)."""
    values: dict[str, Any] = {
        "raw_event_id": event.id,
        "channel": event.channel,
        "source": event.source,
        "kind": parsed.kind,
        "external_id": _key(parsed.external_id),
        "thread_key": _key(parsed.thread_key),
        "is_edit": parsed.is_edit,
        "author_name": _cut(parsed.author.name, 255),
        "author_phone": _cut(parsed.author.phone, 64),
        "author_email": _cut(parsed.author.email, 255),
        "author_platform_id": _cut(parsed.author.platform_id, 128),
        "text": parsed.text,
        "attachments": parsed.attachments,
        "rating": parsed.rating,
        "fields": parsed.fields,
        "received_at": parsed.received_at or event.received_at,
        "created_at": utcnow(),
        "state": AppealState.new.value,
        "target": {},
        "tags": [],
        "labels": {},
        "trace": [],
        "delivery_state": "none",
    }
    values = storable(values)
    dialect = session.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(Appeal).values(**values)
    if parsed.external_id is not None:
        ins = ins.on_conflict_do_nothing(
            index_elements=["channel", "source", "external_id"],
            index_where=text("external_id IS NOT NULL"),
        )
    new_id = session.execute(ins.returning(Appeal.id)).scalar()
    if new_id is None:
        return None
    return session.get(Appeal, new_id)


def _cut(value: str | None, n: int) -> str | None:
    return value[:n] if value else value


def _key(value: str | None, n: int = 255) -> str | None:
    """An id that fits its column and stays unique: a long one keeps a prefix and its digest."""
    if value is None or len(value) <= n:
        return value
    return f"{value[: n - 41]}#{hashlib.sha1(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def storable(value: Any) -> Any:
    """What every database stores: no NUL (PostgreSQL text and JSONB refuse it) and no lone
    surrogate (not encodable as UTF-8). A customer's message that carries either still becomes an
    appeal, with U+FFFD in their place (found by tests/reliability/test_fuzz_parsers.py)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
            return "".join(
                "\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in value
            )
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def apply_decision(appeal: Appeal, decision: Decision) -> None:
    appeal.rules_version = decision.rules_version
    appeal.topic = decision.topic
    appeal.region = decision.region
    appeal.store = decision.store
    appeal.department = decision.department
    if decision.assignee is not None:
        appeal.assignee_id = decision.assignee.id
        appeal.assignee_name = decision.assignee.name
        appeal.bitrix_user_id = decision.assignee.bitrix_user_id
    else:
        appeal.assignee_id = appeal.assignee_name = appeal.bitrix_user_id = None
    appeal.target = (
        {
            "entity": decision.target.entity,
            "pipeline": decision.target.pipeline,
            "stage": decision.target.stage,
        }
        if decision.target
        else {}
    )
    appeal.tags = list(decision.tags)
    appeal.labels = dict(decision.labels)
    appeal.filtered_reason = decision.filtered
    appeal.trace = [
        {"step": t.step, "rule": t.rule, "message": t.message, "data": t.data}
        for t in decision.trace
    ]
    appeal.routed_at = utcnow()
    appeal.state = AppealState.filtered if decision.filtered else AppealState.routed
    apply_sla(appeal, decision)  # first-reply deadline and escalation plan (reaction time)


@dataclass
class AppealFilter:
    channel: str | None = None
    source: str | None = None
    state: str | None = None
    region: str | None = None
    topic: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_page(
    session: Session, *, flt: AppealFilter, limit: int = 50, before_id: int | None = None
) -> list[Appeal]:
    """Newest first; keyset on id so that page 1,000 costs what page 1 costs."""
    q = select(Appeal).order_by(Appeal.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(Appeal.id < before_id)
    for column, value in (
        (Appeal.channel, flt.channel),
        (Appeal.source, flt.source),
        (Appeal.state, flt.state),
        (Appeal.region, flt.region),
        (Appeal.topic, flt.topic),
    ):
        if value:
            q = q.where(column == value)
    if flt.since:
        q = q.where(Appeal.received_at >= flt.since)
    if flt.until:
        q = q.where(Appeal.received_at < flt.until)
    return list(session.execute(q).scalars().all())


def get(session: Session, appeal_id: int) -> Appeal | None:
    return session.get(Appeal, appeal_id)


def for_raw_event(session: Session, raw_event_id: int) -> list[Appeal]:
    return list(
        session.execute(select(Appeal).where(Appeal.raw_event_id == raw_event_id)).scalars().all()
    )


def search_text(session: Session, needle: str, limit: int = 50) -> list[Appeal]:
    like = f"%{needle}%"
    q = (
        select(Appeal)
        .where(or_(Appeal.text.ilike(like), Appeal.author_name.ilike(like)))
        .order_by(Appeal.id.desc())
        .limit(limit)
    )
    return list(session.execute(q).scalars().all())
