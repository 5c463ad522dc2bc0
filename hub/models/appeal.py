"""The normalised appeal: what the customer said, where it goes and whether the CRM has it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, text
from sqlalchemy import text as sa_text
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class AppealState(StrEnum):
    new = "new"  # parsed, not yet routed
    routed = "routed"  # routed, delivery pending
    filtered = "filtered"  # kept with the reason, never delivered (invariant 3)
    delivered = "delivered"  # visible in the CRM
    answered = "answered"  # a first reply reached the customer
    closed = "closed"


class DeliveryState(StrEnum):
    none = "none"  # nothing to deliver (filtered, or no CRM configured)
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # gave up after the retry horizon; the job is dead and retryable


class Appeal(SQLModel, table=True):
    __tablename__ = "appeals"
    __table_args__ = (
        Index(
            "uq_appeals_external_id",
            "channel",
            "source",
            "external_id",
            unique=True,
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_appeals_received_at_id", "received_at", "id"),
        Index("ix_appeals_thread", "channel", "source", "thread_key"),
        Index("ix_appeals_state", "state", "received_at"),
        Index("ix_appeals_assignee_state", "assignee_id", "state"),
        Index("ix_appeals_raw_event", "raw_event_id"),
        Index("ix_appeals_region_topic", "region", "topic"),
        # Newest-first keyset pages of the admin UI, one filter each, stay index range scans
        # at a million rows: WHERE col = ? AND id < ? ORDER BY id DESC LIMIT n.
        Index("ix_appeals_channel_id", "channel", "id"),
        Index("ix_appeals_source_id", "source", "id"),
        Index("ix_appeals_kind_id", "kind", "id"),
        Index("ix_appeals_state_id", "state", "id"),
        Index("ix_appeals_region_id", "region", "id"),
        Index("ix_appeals_topic_id", "topic", "id"),
        Index("ix_appeals_department_id", "department", "id"),
        Index("ix_appeals_assignee_id", "assignee_id", "id"),
        # Reaction time: the escalation sweep's next due steps, and what is overdue now.
        Index("ix_appeals_next_escalation", "next_escalation_at"),
        Index("ix_appeals_state_due", "state", "reply_due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    raw_event_id: int | None = Field(default=None, foreign_key="raw_events.id")
    channel: str = Field(max_length=32)
    source: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # message, comment, review, call, form, email
    external_id: str | None = Field(default=None, max_length=255)
    thread_key: str | None = Field(default=None, max_length=255)
    is_edit: bool = False
    author_name: str | None = Field(default=None, max_length=255)
    author_phone: str | None = Field(default=None, max_length=64)
    author_email: str | None = Field(default=None, max_length=255)
    author_platform_id: str | None = Field(default=None, max_length=128)
    text: str = ""
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    rating: int | None = None
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    state: str = Field(default=AppealState.new, max_length=16)
    # Routing result (invariant 4: the version and the trace are always recorded).
    rules_version: int | None = None
    topic: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    store: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=64)
    assignee_id: str | None = Field(default=None, max_length=64)
    assignee_name: str | None = Field(default=None, max_length=255)
    bitrix_user_id: int | None = None
    target: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    labels: dict[str, str] = Field(
        default_factory=dict,
        sa_column=Column(JSONType, nullable=False, default=dict, server_default=sa_text("'{}'")),
    )
    filtered_reason: str | None = None
    trace: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    routed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    # Delivery into Bitrix24.
    delivery_state: str = Field(default=DeliveryState.none, max_length=16)
    crm_entity: str | None = Field(default=None, max_length=16)  # deal / lead
    crm_entity_id: int | None = None
    crm_contact_id: int | None = None
    crm_comment_id: int | None = None
    crm_visible_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivery_error: str | None = None
    first_reply_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    # Replies (hub/replies.py): the Open Lines chat and session this appeal's thread went to,
    # and the last refusal of a staff answer, shown to staff until an answer gets through.
    b24_chat_id: int | None = None
    b24_session_id: int | None = None
    reply_error: str | None = None

    # Reaction time (hub/routing/sla.py, hub/escalation.py): the first-reply deadline counted in
    # the responsible's working time, the target it came from, the escalation steps planned at
    # routing ([{"do", "at", "label"}], in time order), how many of them are already queued and
    # when the next one is due (NULL: none left, or answered).
    reply_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_target_minutes: int | None = None
    sla_rule: str | None = Field(default=None, max_length=64)
    escalation_plan: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSONType, nullable=False, default=list, server_default=sa_text("'[]'")),
    )
    escalation_step: int = Field(default=0, sa_column_kwargs={"server_default": sa_text("0")})
    next_escalation_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
