"""Per-day figures for the dashboard, so it answers in milliseconds at a million appeals.

One row per Moscow day: counts by channel, region, topic, state and filter reason, and
log-bucketed histograms of time to deal and time to first reply per department and employee.
Rows are computed from ``appeals`` on demand and recomputed while the day can still change
(replies arrive later); see ``hub/storage/dashboard.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class DailyRollup(SQLModel, table=True):
    __tablename__ = "ui_daily_rollups"

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, Moscow time
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
