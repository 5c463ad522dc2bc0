"""A file kept for appeals (a form upload, an e-mail attachment): the blob lives on disk under
``settings.files_dir``, named by its SHA-256; this row says what it is and where it came from.

Content addressing makes storing idempotent: the same bytes sent twice are one blob and one row,
so an intake retried after a crash never duplicates a file.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from hub.models.types import UTCDateTime
from hub.timeutil import utcnow


class StoredFile(SQLModel, table=True):
    __tablename__ = "stored_files"

    sha256: str = Field(primary_key=True, max_length=64)  # hex; also the blob's file name
    size: int
    media_type: str = Field(default="application/octet-stream", max_length=255)
    name: str = Field(default="", max_length=255)  # as the sender named it (first time seen)
    channel: str = Field(default="", max_length=32)
    source: str = Field(default="", max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
