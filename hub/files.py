"""A small content-addressed file store for what customers attach (e-mail attachments, form
uploads): blobs under ``settings.files_dir``, named by SHA-256, plus a ``stored_files`` row.

The blob is written (fsynced, renamed into place) before the row is inserted in the caller's
transaction, so a committed row always has its blob; a crash in between leaves at worst an
unreferenced blob, which the next save of the same bytes reuses. Saving the same bytes again is a
no-op, so an intake that is retried never duplicates a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.models import StoredFile
from hub.settings import Settings, get_settings
from hub.timeutil import utcnow

_t = StoredFile.__table__
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# A file inside a stored raw event (a form upload): "e<raw event id>.<sha256>".
EVENT_FILE_RE = re.compile(r"^e(\d{1,18})\.([0-9a-f]{64})$")


@dataclass(frozen=True)
class SavedFile:
    sha256: str
    size: int
    media_type: str
    name: str


class FileStore:
    """Blobs on disk: ``<dir>/ab/cd/abcd…`` (two levels keep directories small)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.directory / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists() and target.stat().st_size == len(data):
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        return sha

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None


def store_for(settings: Settings | None = None) -> FileStore:
    return FileStore((settings or get_settings()).files_dir)


def safe_name(name: str | None, default: str = "file") -> str:
    """A file name fit for a URL and a download: no directories, no control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if ch.isprintable())
    base = base.strip(" .")
    return base[:150] or default


def save(
    conn: Connection,
    store: FileStore,
    *,
    data: bytes,
    name: str | None,
    media_type: str | None,
    channel: str = "",
    source: str = "",
) -> SavedFile:
    """Write the blob, then its row in the caller's transaction (idempotent on the digest)."""
    sha = store.put(data)
    media = (media_type or "application/octet-stream")[:255]
    clean = safe_name(name)
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_t)
    conn.execute(
        ins.values(
            sha256=sha,
            size=len(data),
            media_type=media,
            name=clean,
            channel=channel[:32],
            source=source[:128],
            created_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["sha256"])
    )
    return SavedFile(sha, len(data), media, clean)


def get(conn: Connection, sha256: str) -> StoredFile | None:
    row = conn.execute(select(_t).where(_t.c.sha256 == sha256)).mappings().first()
    return StoredFile(**row) if row else None


def file_url(file_id: str, name: str) -> str:
    """The staff-facing link (relative to the public URL), served by ``hub/http/files.py``."""
    return f"/files/{file_id}/{quote(safe_name(name), safe='')}"


def attachment(file_id: str, *, name: str, size: int, media_type: str) -> dict[str, Any]:
    """An appeal's attachment entry; delivery shows ``url`` as a link in the CRM comment."""
    clean = safe_name(name)
    return {
        "type": "file",
        "name": clean,
        "size": size,
        "media_type": media_type,
        "file_id": file_id,
        "url": file_url(file_id, clean),
    }
