"""A hotline call behind an appeal: the facts of each PBX event, its recording, and where its
delivery into Bitrix24 telephony stands.

The appeal holds the *merged* facts (what routing and the UI read); this row keeps the per-event
facts they were merged from, so that an event arriving late or twice changes the result exactly
as if the events had come in order. ``steps`` is the telephony outbox: each Bitrix24 step
(register, finish, bind, record, task) is written as an ``intent`` before its request and ``done``
after it, so that a worker killed in between looks up instead of repeating (invariant 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from hub.models.types import JSONType, UTCDateTime
from hub.timeutil import utcnow


class RecordingState:
    none = "none"  # no recording announced
    pending = "pending"  # announced, the download job runs
    stored = "stored"  # in the file store: recording_sha
    refused = "refused"  # wrong format, too large, not an allowed host: recording_error says why


class TelephonyCall(SQLModel, table=True):
    __tablename__ = "telephony_calls"
    __table_args__ = (
        Index("uq_telephony_calls_appeal", "appeal_id", unique=True),
        Index("ix_telephony_calls_key", "channel", "source", "call_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: int = Field(foreign_key="appeals.id")
    channel: str = Field(max_length=32)
    source: str = Field(max_length=128)
    call_key: str = Field(max_length=255)  # the PBX's id of the whole call
    # raw event id -> the facts that event reported (connectors/telephony_common.py).
    events: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    ended: bool = False
    # The newest recording reference the PBX gave (a URL, a Mango recording id, a stored file).
    recording_ref: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    recording_state: str = Field(default=RecordingState.none, max_length=16)
    recording_sha: str | None = Field(default=None, max_length=64)
    recording_name: str | None = Field(default=None, max_length=255)
    recording_size: int | None = None
    recording_error: str | None = None
    # Bitrix24 telephony.
    external_call_id: str | None = Field(default=None, max_length=255)  # EXTERNAL_CALL_ID sent
    b24_call_id: str | None = Field(default=None, max_length=255)  # CALL_ID from register
    b24_activity_id: int | None = None  # CRM_ACTIVITY_ID from finish
    b24_task_id: int | None = None  # the "call back" task of a missed call
    steps: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
