"""Staff answers going back to customers, and the Open Lines state they travel through.

A ``Reply`` is one operator message (from an Open Lines chat, or typed in the deal card). It is
stored before anything is sent, so the send can be recorded as an *intent* (``sending``) and a
retry after a crash can tell "maybe sent" from "never tried" (invariant 2).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class ReplyState(StrEnum):
    pending = "pending"  # stored; the reply job will send it
    sending = "sending"  # intent committed, outcome unknown (a crash here is "maybe sent")
    sent = "sent"  # the platform accepted it; platform_message_id is set
    failed = "failed"  # the platform refused it (blocked, deleted, gone): shown to staff
    uncertain = "uncertain"  # maybe sent, and the platform cannot say: a human decides
    deleted = "deleted"  # the operator deleted it in Bitrix24 (relayed or noted)


class ReplyOrigin(StrEnum):
    openline = "openline"  # OnImConnectorMessageAdd from the Open Lines chat
    deal_card = "deal_card"  # the "Ответить клиенту" action in the deal card


class Reply(SQLModel, table=True):
    __tablename__ = "replies"
    __table_args__ = (
        # Bitrix24 may deliver the same event twice: one reply per operator message.
        Index(
            "uq_replies_b24_message",
            "b24_chat_id",
            "b24_message_id",
            unique=True,
            sqlite_where=text("b24_message_id IS NOT NULL"),
            postgresql_where=text("b24_message_id IS NOT NULL"),
        ),
        Index("ix_replies_appeal", "appeal_id", "id"),
        Index("ix_replies_state", "state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    origin: str = Field(default=ReplyOrigin.openline, max_length=16)
    appeal_id: int | None = Field(default=None, foreign_key="appeals.id")
    channel: str = Field(default="", max_length=32)
    source: str = Field(default="", max_length=128)
    # Open Lines identifiers from the event (im.chat_id / im.message_id) and our chat.id.
    b24_chat_id: int | None = None
    b24_message_id: int | None = None
    line_id: int | None = None
    external_chat_id: str | None = Field(default=None, max_length=255)
    operator_user_id: int | None = None
    text: str = ""  # as Bitrix24 sent it (BB-code, signature prefix)
    body: str = ""  # what the customer gets, in the channel's format
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    state: str = Field(default=ReplyState.pending, max_length=16)
    platform_message_id: str | None = Field(default=None, max_length=255)
    attempts: int = 0
    last_error: str | None = None
    # Edits and deletions from Bitrix24: what was relayed and what could only be noted.
    notes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sending_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # status to Bitrix24


class OpenLineChat(SQLModel, table=True):
    """One customer conversation as an Open Lines chat: our ``chat.id`` and Bitrix24's ids."""

    __tablename__ = "openline_chats"
    __table_args__ = (
        Index("uq_openline_chats_external", "external_chat_id", unique=True),
        Index("ix_openline_chats_thread", "channel", "source", "thread_key"),
        Index("ix_openline_chats_b24", "b24_chat_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_chat_id: str = Field(max_length=255)
    channel: str = Field(max_length=32)
    source: str = Field(max_length=128)
    thread_key: str = Field(max_length=255)
    line_id: int
    connector: str = Field(max_length=64)
    b24_chat_id: int | None = None
    b24_session_id: int | None = None
    deal_id: int | None = None
    deal_linked: bool = False  # the deal carries the chat link
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConnectorLine(SQLModel, table=True):
    """An open line on which ClientHub's connector is switched on (from the settings page)."""

    __tablename__ = "b24_connector_lines"
    __table_args__ = (
        Index("uq_b24_connector_lines", "domain", "connector", "line_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=255)
    connector: str = Field(max_length=64)
    line_id: int
    active: bool = True
    activated_by: int | None = None  # the Bitrix24 user who switched it on
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
