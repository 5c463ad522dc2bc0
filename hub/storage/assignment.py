"""Assignment state in the database: round-robin cursors and open-appeal counts.

Round-robin cursors live in ``pool_cursors`` so that every worker continues the same turn.
On PostgreSQL the cursor row is locked (``FOR UPDATE``) until the routing transaction ends,
so two workers never give the same turn twice; SQLite's writer lock does the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from hub.models import Appeal, AppealState, PoolCursor
from hub.timeutil import utcnow

OPEN_STATES = (AppealState.routed, AppealState.delivered)


class DbAssignmentState:
    """``AssignmentState`` over a session; ``record=False`` reads without moving cursors
    (``clienthub route`` against the database is a dry run)."""

    def __init__(self, session: Session, *, record: bool = True) -> None:
        self.session = session
        self.record = record
        self.queries = 0

    def open_counts(self, employee_ids: Collection[str]) -> Mapping[str, int]:
        """One grouped query for all candidates of a decision."""
        ids = list(employee_ids)
        if not ids:
            return {}
        self.queries += 1
        rows = self.session.exec(
            select(Appeal.assignee_id, func.count())
            .where(col(Appeal.assignee_id).in_(ids))
            .where(col(Appeal.state).in_([s.value for s in OPEN_STATES]))
            .group_by(col(Appeal.assignee_id))
        ).all()
        counts = dict.fromkeys(ids, 0)
        counts.update({assignee: int(n) for assignee, n in rows if assignee is not None})
        return counts

    def last_assigned(self, pool_key: str) -> str | None:
        self.queries += 1
        if not self.record:
            row = self.session.get(PoolCursor, pool_key)
            return row.last_employee_id if row else None
        self._ensure_row(pool_key)
        row = self.session.exec(
            select(PoolCursor).where(PoolCursor.pool == pool_key).with_for_update()
        ).one()
        return row.last_employee_id

    def advance(self, pool_key: str, employee_id: str) -> None:
        if not self.record:
            return
        row = self.session.get(PoolCursor, pool_key)
        if row is None:
            row = PoolCursor(pool=pool_key)
        row.last_employee_id = employee_id
        row.updated_at = utcnow()
        self.session.add(row)
        self.session.flush()

    def assigned(self, employee_id: str) -> None:
        """Nothing to do: the appeal row, saved by the pipeline, carries the assignee."""

    def _ensure_row(self, pool_key: str) -> None:
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        if dialect not in ("postgresql", "sqlite"):
            if self.session.get(PoolCursor, pool_key) is None:
                self.session.add(PoolCursor(pool=pool_key))
                self.session.flush()
            return
        statement = insert(PoolCursor).values(pool=pool_key, updated_at=utcnow())
        self.session.execute(statement.on_conflict_do_nothing(index_elements=["pool"]))
