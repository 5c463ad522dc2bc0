"""Where each poller stopped (Telegram getUpdates offset, OK discussions, 2GIS reviews...).

Committed in the same transaction as the raw events it fetched, so a restart neither skips nor
repeats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class PollerCursor(SQLModel, table=True):
    __tablename__ = "poller_cursors"

    name: str = Field(primary_key=True, max_length=160)  # e.g. "telegram:support_bot"
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
