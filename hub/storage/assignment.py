"""Assignment state in the database: round-robin cursors and open-appeal counts.

Round-robin cursors live in ``pool_cursors`` so that every worker continues the same turn.
On PostgreSQL a turn is taken in a short transaction of its own: the cursor row is locked
(``FOR UPDATE``) from reading the last turn to recording the next, then committed at once, so
two workers never give the same turn twice and none waits for another's whole batch (a parse
batch of 50 events holding a hot pool's row serialised every worker behind it). If the batch
then rolls back, that turn is simply skipped. On SQLite the session's writer lock does the same
(a second connection would wait for that lock), so there the cursor moves in the session.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection, func, update
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
        bind = session.get_bind()
        self._engine = bind.engine
        self.autonomous = record and bind.dialect.name == "postgresql"
        self._held: tuple[str, Connection] | None = None  # the turn being taken, autonomous

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
        if self.autonomous:
            self.release()  # one turn at a time: never two cursor locks, never a deadlock
            conn = self._engine.connect()
            try:
                conn.execute(
                    pg_insert(PoolCursor)
                    .values(pool=pool_key, updated_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["pool"])
                )
                last = conn.execute(
                    select(PoolCursor.last_employee_id)
                    .where(PoolCursor.pool == pool_key)
                    .with_for_update()
                ).scalar_one()
            except BaseException:
                conn.close()
                raise
            self._held = (pool_key, conn)
            return last
        self._ensure_row(pool_key)
        row = self.session.exec(
            select(PoolCursor).where(PoolCursor.pool == pool_key).with_for_update()
        ).one()
        return row.last_employee_id

    def advance(self, pool_key: str, employee_id: str) -> None:
        if not self.record:
            return
        if self._held is not None and self._held[0] == pool_key:
            conn = self._held[1]
            self._held = None
            try:
                conn.execute(
                    update(PoolCursor)
                    .where(PoolCursor.pool == pool_key)
                    .values(last_employee_id=employee_id, updated_at=utcnow())
                )
                conn.commit()
            finally:
                conn.close()
            return
        row = self.session.get(PoolCursor, pool_key)
        if row is None:
            row = PoolCursor(pool=pool_key)
        row.last_employee_id = employee_id
        row.updated_at = utcnow()
        self.session.add(row)
        self.session.flush()

    def release(self) -> None:
        """End a turn that was read but not taken (nobody in the pool could have it)."""
        if self._held is not None:
            conn = self._held[1]
            self._held = None
            try:
                conn.rollback()
            finally:
                conn.close()

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
