"""Bitrix24 state shared by all workers: tokens, the rate-limit bucket, what exists in the CRM."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class PortalToken(SQLModel, table=True):
    """OAuth tokens of the local application, encrypted at rest (hub.crypto)."""

    __tablename__ = "b24_portal_tokens"

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=255, unique=True)
    member_id: str | None = Field(default=None, max_length=64)
    client_endpoint: str | None = Field(default=None, max_length=512)
    access_token_enc: str
    refresh_token_enc: str
    application_token_enc: str | None = None
    expires_at: datetime = Field(sa_type=UTCDateTime)
    scope: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RateBucket(SQLModel, table=True):
    """A leaky bucket shared across processes (the portal counts per portal and source IP)."""

    __tablename__ = "rate_buckets"

    name: str = Field(primary_key=True, max_length=128)
    level: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CrmLink(SQLModel, table=True):
    """The outbox record of what ClientHub created in the CRM: contact per person, deal per thread,
    comment per message. Looked up before every create (invariant 2)."""

    __tablename__ = "crm_links"
    __table_args__ = (Index("uq_crm_links_kind_key", "kind", "key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # contact, deal, lead, comment, call
    key: str = Field(max_length=255)  # e.g. "phone:+79161234567", "thread:vk:club1:2000000001"
    crm_id: int
    appeal_id: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
