"""The job queue lives in the same database: a job commits with the change that caused it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class JobState(StrEnum):
    queued = "queued"  # waiting for run_at
    running = "running"  # claimed; lease until locked_until
    done = "done"
    dead = "dead"  # past the retry horizon; visible and retryable (invariant 3)


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        # The idempotency key: enqueuing the same (kind, key) twice gives one job.
        Index("uq_jobs_kind_key", "kind", "key", unique=True),
        Index(
            "ix_jobs_claim",
            "kind",
            "run_at",
            sqlite_where=text("state = 'queued'"),
            postgresql_where=text("state = 'queued'"),
        ),
        Index(
            "ix_jobs_lease",
            "locked_until",
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index("ix_jobs_state", "state", "id"),
        # An appeal's page lists its jobs (delivery history): without it, a scan of the queue.
        Index("ix_jobs_appeal", "appeal_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    key: str = Field(max_length=255)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    state: str = Field(default=JobState.queued, max_length=16)
    attempts: int = 0
    run_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_by: str | None = Field(default=None, max_length=128)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    appeal_id: int | None = None
