"""A small content-addressed file store for what customers attach (e-mail attachments, form
uploads): blobs under ``settings.files_dir``, named by SHA-256, plus a ``stored_files`` row.

The blob is written (fsynced, renamed into place) before the row is inserted in the caller's
transaction, so a committed row always has its blob; a crash in between leaves at worst an
unreferenced blob, which the next save of the same bytes reuses. Saving the same bytes again is a
no-op, so an intake that is retried never duplicates a file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.crypto import derive_key
from hub.models import StoredFile
from hub.settings import Settings, get_settings
from hub.timeutil import utcnow

_t = StoredFile.__table__
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# A file inside a stored raw event (a form upload): "e<raw event id>.<sha256>".
EVENT_FILE_RE = re.compile(r"^e(\d{1,18})\.([0-9a-f]{64})$")


class TooLarge(ValueError):
    """The stream ran past the size limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


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

    def put_stream(
        self, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """Like ``put`` for a file too large to hold in memory (a call recording): written to a
        temporary file while hashed, then renamed into place. Raises ``TooLarge`` past
        ``max_bytes`` (nothing is kept). Returns (sha256, size)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(max_bytes)
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            sha = digest.hexdigest()
            target = self.path(sha)
            if target.exists() and target.stat().st_size == size:
                Path(tmp).unlink()
                return sha, size
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return sha, size

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


def record(
    conn: Connection,
    *,
    sha256: str,
    size: int,
    name: str | None,
    media_type: str | None,
    channel: str = "",
    source: str = "",
) -> SavedFile:
    """The row for a blob already in the store (``FileStore.put_stream``), in the caller's
    transaction; idempotent on the digest."""
    media = (media_type or "application/octet-stream")[:255]
    clean = safe_name(name)
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_t)
    conn.execute(
        ins.values(
            sha256=sha256,
            size=size,
            media_type=media,
            name=clean,
            channel=channel[:32],
            source=source[:128],
            created_at=utcnow(),
        ).on_conflict_do_nothing(index_elements=["sha256"])
    )
    return SavedFile(sha256, size, media, clean)


def sign(file_id: str, expires: int, settings: Settings | None = None) -> str:
    """An HMAC over the file id and expiry (unix seconds), for links handed to a third party
    (Bitrix24 downloading a call recording); keyed by the instance secret."""
    key = derive_key("file-url", settings)
    return hmac.new(key, f"{file_id}|{expires}".encode(), hashlib.sha256).hexdigest()


def check_signature(
    file_id: str, expires: int, signature: str, *, now: float, settings: Settings | None = None
) -> bool:
    if expires < now:
        return False
    return hmac.compare_digest(sign(file_id, expires, settings).encode(), signature.encode())


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
