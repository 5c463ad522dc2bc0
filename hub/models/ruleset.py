"""Rule directory versions, stored as their files so that import -> export is byte for byte."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class RuleSetState(StrEnum):
    draft = "draft"
    published = "published"  # the one in force (at most one)
    superseded = "superseded"  # was published; kept, diffable and restorable


class RuleSetVersion(SQLModel, table=True):
    __tablename__ = "ruleset_versions"
    __table_args__ = (
        Index("ix_ruleset_state", "state", "id"),
        # At most one version in force, whatever the code does.
        Index(
            "uq_ruleset_one_published",
            "state",
            unique=True,
            sqlite_where=text("state = 'published'"),
            postgresql_where=text("state = 'published'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)  # the version number
    state: str = Field(default=RuleSetState.draft, max_length=16)
    # {relative path: file text}, exactly as read (UTF-8).
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    checksum: str = Field(max_length=64)
    note: str | None = None
    created_by: str = Field(default="system", max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by: str | None = Field(default=None, max_length=128)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PoolCursor(SQLModel, table=True):
    """Round-robin position per pool, shared by all workers."""

    __tablename__ = "pool_cursors"

    pool: str = Field(primary_key=True, max_length=128)
    last_employee_id: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
