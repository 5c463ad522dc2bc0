"""Requests that were refused, and why: nothing is refused silently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class RejectedRequest(SQLModel, table=True):
    __tablename__ = "rejected_requests"
    __table_args__ = (Index("ix_rejected_received_at", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=128)
    path: str = Field(max_length=512)
    status_code: int
    reason: str
    remote_addr: str | None = Field(default=None, max_length=64)
    content_type: str | None = Field(default=None, max_length=255)
    content_length: int | None = None
    headers: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    # The first bytes only: enough to see what was sent, never a 10 MB blob.
    body_excerpt: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
