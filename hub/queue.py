"""The job queue: enqueue in the caller's transaction, claim with a lease, finish or back off.

The same table serves SQLite and PostgreSQL. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so
several workers never wait on each other; SQLite claims with one atomic ``UPDATE … RETURNING``
inside ``BEGIN IMMEDIATE``. A job whose worker died is claimable again once its lease has expired;
the lease is short and renewed by the worker's heartbeat.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.models import Job, JobState
from hub.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_delay_seconds: float = 1800.0
    horizon: timedelta = timedelta(hours=24)

    def next_run(
        self, job: Job, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again, or None when the horizon is passed (the job goes dead)."""
        rng = rng or random
        exp = min(self.max_delay_seconds, self.base_seconds * 2 ** max(0, job.attempts - 1))
        delay = exp * rng.uniform(0.5, 1.5)  # jitter keeps a fleet of failures from stampeding
        when = now + timedelta(seconds=delay)
        if when > as_utc(job.created_at) + self.horizon:
            return None
        return when


def enqueue(
    session: Session,
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    appeal_id: int | None = None,
) -> bool:
    """Add a job in the caller's transaction. Returns False when (kind, key) already exists."""
    values = {
        "kind": kind,
        "key": key,
        "payload": payload or {},
        "state": JobState.queued.value,
        "attempts": 0,
        "run_at": run_at or utcnow(),
        "created_at": utcnow(),
        "appeal_id": appeal_id,
    }
    dialect = session.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(Job).values(**values)
    stmt = ins.on_conflict_do_nothing(index_elements=["kind", "key"]).returning(Job.id)
    return session.execute(stmt).scalar() is not None


def _due_filter(now: datetime) -> Any:
    return text(
        "((state = 'queued' AND run_at <= :now) OR (state = 'running' AND locked_until < :now))"
    ).bindparams(bindparam("now", now, type_=Job.__table__.c.run_at.type))


def next_due_kind(session: Session, kinds: Sequence[str], now: datetime) -> str | None:
    """The kind of the oldest due job, so that batch handlers get jobs of one kind together."""
    queued = session.execute(
        select(Job.kind)
        .where(Job.state == JobState.queued, Job.run_at <= now, Job.kind.in_(kinds))
        .order_by(Job.run_at, Job.id)
        .limit(1)
    ).scalar()
    if queued is not None:
        return queued
    return session.execute(
        select(Job.kind)
        .where(Job.state == JobState.running, Job.locked_until < now, Job.kind.in_(kinds))
        .limit(1)
    ).scalar()


def claim(
    session: Session, *, kind: str, worker_id: str, limit: int, lease_seconds: float
) -> list[Job]:
    """Take up to ``limit`` due jobs of one kind; the caller commits at once."""
    now = utcnow()
    inner = (
        select(Job.id)
        .where(Job.kind == kind)
        .where(_due_filter(now))
        .order_by(Job.run_at, Job.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    stmt = (
        update(Job)
        .where(Job.id.in_(inner.scalar_subquery()))
        .values(
            state=JobState.running.value,
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
            started_at=now,
        )
        .returning(Job)
    )
    jobs = list(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())
    jobs.sort(key=lambda j: (as_utc(j.run_at), j.id or 0))
    return jobs


def renew(session: Session, *, job_ids: Sequence[int], worker_id: str, lease_seconds: float) -> int:
    if not job_ids:
        return 0
    result = session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.locked_by == worker_id, Job.state == JobState.running)
        .values(locked_until=utcnow() + timedelta(seconds=lease_seconds))
    )
    return result.rowcount


class LeaseLost(Exception):
    """Another worker took the job after our lease expired; our effects must be rolled back."""


def complete(session: Session, *, job: Job, worker_id: str) -> None:
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.locked_by == worker_id, Job.state == JobState.running)
        .values(state=JobState.done.value, finished_at=utcnow(), locked_until=None, last_error=None)
    )
    if result.rowcount != 1:
        raise LeaseLost(f"job {job.id} is no longer held by {worker_id}")


def fail(
    session: Session, *, job: Job, worker_id: str, error: str, policy: RetryPolicy, retry: bool
) -> str:
    """Record a failure: back off and retry, or mark dead. Returns the new state."""
    now = utcnow()
    when = policy.next_run(job, now) if retry else None
    values: dict[str, Any] = {"last_error": error[:4000], "locked_by": None, "locked_until": None}
    if when is None:
        values.update(state=JobState.dead.value, finished_at=now)
    else:
        values.update(state=JobState.queued.value, run_at=when)
    session.execute(
        update(Job).where(Job.id == job.id, Job.locked_by == worker_id).values(**values)
    )
    return values["state"]


def release(session: Session, *, job_ids: Sequence[int], worker_id: str) -> None:
    """Give jobs back untouched (graceful shutdown); the attempt does not count."""
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.locked_by == worker_id, Job.state == JobState.running)
            .values(
                state=JobState.queued.value,
                locked_by=None,
                locked_until=None,
                attempts=Job.attempts - 1,
            )
        )


def retry(
    session: Session, *, job_ids: Sequence[int] | None = None, kind: str | None = None
) -> int:
    """Put dead jobs back in the queue with a fresh horizon (CLI and UI)."""
    now = utcnow()
    stmt = update(Job).where(Job.state == JobState.dead)
    if job_ids:
        stmt = stmt.where(Job.id.in_(job_ids))
    if kind:
        stmt = stmt.where(Job.kind == kind)
    result = session.execute(
        stmt.values(
            state=JobState.queued.value,
            run_at=now,
            created_at=now,
            attempts=0,
            finished_at=None,
        )
    )
    return result.rowcount


def counts_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))
    return {(k, s): n for k, s, n in rows}


def insert_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Plain bulk insert for callers that already know the keys are new."""
    if rows:
        session.execute(insert(Job), rows)
