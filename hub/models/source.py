"""A configured channel source: a VK community, a Telegram bot, a site form, a PBX line."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class ChannelSource(SQLModel, table=True):
    __tablename__ = "channel_sources"
    __table_args__ = (Index("uq_channel_sources", "channel", "source", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    source: str = Field(max_length=128)
    title: str = Field(default="", max_length=255)
    enabled: bool = True
    # Non-secret settings (field mapping, group id, base URL...).
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    # Secrets (webhook secret, tokens), Fernet-encrypted JSON; see hub.crypto.
    secrets_enc: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
