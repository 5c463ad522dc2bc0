"""``GET /files/{file_id}/{name}``: the staff-facing link to a file a customer sent.

``file_id`` is the SHA-256 of a file in the store (e-mail attachments), or
``e<raw event id>.<sha256>`` for a file inside a stored form submission, read back from the raw
event and checked against the digest. Digests make the links unguessable. Files are served as
downloads (only images, PDF and plain text inline) with ``nosniff``, so an uploaded HTML page
can never run as ClientHub's own.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.engine import Engine

from hub import files
from hub.db import session_scope
from hub.settings import Settings
from hub.storage import raw_events

router = APIRouter()
INLINE = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
FORM_CHANNELS = ("form", "tilda")


def _from_store(engine: Engine, settings: Settings, sha: str) -> tuple[bytes, str] | None:
    with engine.connect() as conn:
        row = files.get(conn, sha)
    if row is None:
        return None
    data = files.store_for(settings).read(sha)
    return (data, row.media_type) if data is not None else None


def _from_event(engine: Engine, raw_id: int, sha: str) -> tuple[bytes, str] | None:
    from connectors.form import uploads

    with session_scope(engine, read_only=True) as s:
        raw = raw_events.get(s, raw_id)
        if raw is None or raw.channel not in FORM_CHANNELS:
            return None
        found = uploads.find(raw.body, raw.content_type, sha)
    return (found.data, found.media_type) if found else None


@router.get("/files/{file_id}/{name}")
async def download(file_id: str, name: str, request: Request) -> Response:
    engine: Engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    if files.SHA256_RE.match(file_id):
        found = await run_in_threadpool(_from_store, engine, settings, file_id)
    elif m := files.EVENT_FILE_RE.match(file_id):
        found = await run_in_threadpool(_from_event, engine, int(m.group(1)), m.group(2))
    else:
        raise HTTPException(404, "no such file")
    if found is None:
        raise HTTPException(404, "no such file")
    data, media_type = found
    disposition = "inline" if media_type in INLINE else "attachment"
    filename = quote(files.safe_name(name), safe="")
    return Response(
        data,
        media_type=media_type if media_type in INLINE else "application/octet-stream",
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{filename}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )
