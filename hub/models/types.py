"""Column types shared by the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.types import TypeDecorator

from hub.timeutil import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes; gives aware UTC back on both backends (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


JSONType = JSON().with_variant(JSON(), "sqlite")
Bytes = LargeBinary
