"""A platform request exactly as it arrived: the replay source for every later step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, text
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class RawEventState(StrEnum):
    received = "received"
    parsed = "parsed"
    unsupported = "unsupported"  # the connector did not know the event kind; kept, never dropped
    failed = "failed"
    ignored = "ignored"  # e.g. the community's own echo: stored, produced no appeal, with a reason


class RawEvent(SQLModel, table=True):
    __tablename__ = "raw_events"
    __table_args__ = (
        # One row per platform event: a retried event id is acknowledged, not stored twice.
        Index(
            "uq_raw_events_platform_id",
            "channel",
            "source",
            "external_id",
            unique=True,
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_raw_events_received_at", "received_at"),
        # The channels page: each source's latest event, one seek (migration 0004).
        Index("ix_raw_events_source_id", "channel", "source", "id"),
        # Unsupported events per source and type without reading the others (migration 0004).
        Index(
            "ix_raw_events_unsupported",
            "channel",
            "source",
            "event_type",
            sqlite_where=text("state = 'unsupported'"),
            postgresql_where=text("state = 'unsupported'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    source: str = Field(max_length=128)
    external_id: str | None = Field(default=None, max_length=255)
    event_type: str | None = Field(default=None, max_length=64)
    headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    content_type: str | None = Field(default=None, max_length=255)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str = Field(default=RawEventState.received, max_length=16)
    state_reason: str | None = None
