"""``telephony_calls``: the per-call row behind a call appeal (hub/models/call.py).

Nothing here commits. ``lock_for_appeal`` takes the row for update so that two parse jobs merging
events of one call, or two telephony jobs of one call, never interleave (on SQLite every writer
holds the database lock anyway).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.models import Appeal, TelephonyCall
from hub.timeutil import utcnow


def lock_for_appeal(session: Session, appeal: Appeal) -> TelephonyCall:
    """The call row of ``appeal``, created on first use, locked for this transaction."""
    assert appeal.id is not None
    dialect = session.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(TelephonyCall).values(
        appeal_id=appeal.id,
        channel=appeal.channel,
        source=appeal.source,
        call_key=appeal.external_id or str(appeal.id),
        events={},
        recording_ref={},
        steps={},
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.execute(ins.on_conflict_do_nothing(index_elements=["appeal_id"]))
    row = session.execute(
        select(TelephonyCall)
        .where(TelephonyCall.appeal_id == appeal.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    return row


def for_appeal(session: Session, appeal_id: int, *, lock: bool = False) -> TelephonyCall | None:
    stmt = select(TelephonyCall).where(TelephonyCall.appeal_id == appeal_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def locked_appeal(session: Session, *, channel: str, source: str, external_id: str) -> Appeal:
    """The call appeal an earlier event created, locked: events merge one at a time."""
    return session.execute(
        select(Appeal)
        .where(
            Appeal.channel == channel,
            Appeal.source == source,
            Appeal.external_id == external_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def set_step(session: Session, call: TelephonyCall, step: str, state: Any) -> None:
    call.steps = {**(call.steps or {}), step: state}
    call.updated_at = utcnow()
    session.add(call)


def save(session: Session, call: TelephonyCall, **values: Any) -> None:
    for key, value in values.items():
        setattr(call, key, value)
    call.updated_at = utcnow()
    session.add(call)
