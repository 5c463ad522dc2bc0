"""Where each poller stopped. Saved in the same transaction as the raw events it fetched, so a
restart neither skips nor repeats."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from hub.models import PollerCursor
from hub.timeutil import utcnow

_t = PollerCursor.__table__


def load(conn: Connection, name: str) -> dict[str, Any]:
    """The cursor's JSON, or ``{}`` for a poller that never ran."""
    value = conn.execute(select(_t.c.cursor).where(_t.c.name == name)).scalar()
    return dict(value) if value else {}


def save(conn: Connection, name: str, cursor: dict[str, Any]) -> None:
    """Advance the cursor and mark the poll successful (call inside the events' transaction)."""
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_t)
    now = utcnow()
    stmt = ins.values(name=name, cursor=cursor, last_ok_at=now, last_error=None, updated_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "cursor": stmt.excluded.cursor,
                "last_ok_at": stmt.excluded.last_ok_at,
                "last_error": None,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


def record_error(engine: Engine, name: str, error: str) -> None:
    """Note a failed poll without touching the cursor (its own short transaction)."""
    with engine.begin() as conn:
        ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_t)
        now = utcnow()
        stmt = ins.values(name=name, cursor={}, last_error=error[:2000], updated_at=now)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"last_error": stmt.excluded.last_error, "updated_at": now},
            )
        )


def get(engine: Engine, name: str) -> PollerCursor | None:
    with engine.connect() as conn:
        row = conn.execute(select(_t).where(_t.c.name == name)).mappings().first()
    return PollerCursor(**row) if row else None


def list_all(engine: Engine) -> list[PollerCursor]:
    with engine.connect() as conn:
        rows = conn.execute(select(_t).order_by(_t.c.name)).mappings().all()
    return [PollerCursor(**row) for row in rows]
