"""HTTP for telephony: signed recording links for Bitrix24, recording uploads from a PBX script,
and the "В чёрный список" action in the Bitrix24 deal card.

- ``GET /telephony/recordings/{sha}/{name}?exp=&sig=``: the link ``attachRecord`` gets in
  ``RECORD_URL`` mode; an HMAC over the file and the expiry (hub/files.py), streamed from disk.
- ``POST /telephony/cti/{source}/recording?token=``: multipart ``callId`` + ``file`` from an
  Asterisk/FreePBX script (docs/telephony.md). The webhook endpoint keeps a 1 MB body limit, so
  the file is streamed into the file store here (size limit, .mp3/.wav, else converted by ffmpeg
  or refused with 415), then a ``recording`` raw event pointing at it is stored durably before
  the 200, like any webhook (invariant 1).
- ``POST /bitrix24/placement/blacklist`` (placement ``CRM_DEAL_DETAIL_TOOLBAR``): the numbers of
  the deal's appeals and a button calling :func:`hub.blacklist.add_phone`; verified like the
  other placements (hub/bitrix24/app_events.py), bound by ``clienthub blacklist bind-placement``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from connectors.base import InboundRequest, Rejected
from connectors.cti import check_token
from hub import blacklist, files
from hub.bitrix24.app_events import (
    placement_options,
    read_form,
    sign,
    templates,
    unsign,
    verify_app,
)
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.placement import current_user
from hub.db import session_scope
from hub.models import Appeal
from hub.settings import Settings
from hub.storage.raw_events import IncomingEvent
from hub.telephony_recordings import FORMATS, FetchError, can_convert, convert, sniff

log = logging.getLogger("clienthub.telephony")
router = APIRouter(tags=["telephony"])
PLACEMENT = "CRM_DEAL_DETAIL_TOOLBAR"
PLACEMENT_PATH = "/bitrix24/placement/blacklist"


@router.get("/telephony/recordings/{sha}/{name}")
def recording(sha: str, name: str, request: Request, exp: int = 0, sig: str = "") -> Response:
    settings: Settings = request.app.state.settings
    if not files.SHA256_RE.match(sha) or not files.check_signature(
        sha, exp, sig, now=time.time(), settings=settings
    ):
        raise HTTPException(403, "the link is wrong or has expired")
    path = files.store_for(settings).path(sha)
    if not path.exists():
        raise HTTPException(404, "no such recording")
    ext = name.rsplit(".", 1)[-1].lower()
    return FileResponse(
        path,
        media_type=FORMATS.get(ext, "application/octet-stream"),
        filename=files.safe_name(name),
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
    )


@router.post("/telephony/cti/{source}/recording")
async def upload_recording(source: str, request: Request) -> Response:
    app = request.app
    settings: Settings = app.state.settings
    config = app.state.sources.get("cti", source)
    if config is None:
        raise HTTPException(404, f"unknown CTI source {source!r}")
    inbound = InboundRequest(
        method="POST",
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=b"",
        content_type="multipart/form-data",
    )
    try:
        check_token(inbound, config)
    except Rejected as exc:
        return JSONResponse({"error": exc.reason}, status_code=exc.status)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.recording_max_bytes + 65536:
        return JSONResponse({"error": "recording too large"}, status_code=413)
    form = await request.form(max_files=1, max_fields=20)
    call_id, part = form.get("callId"), form.get("file")
    if not isinstance(call_id, str) or not call_id or part is None or isinstance(part, str):
        return JSONResponse({"error": "send multipart callId and file"}, status_code=422)
    try:
        saved = await run_in_threadpool(_keep, part.file, part.filename or "", settings)
    except files.TooLarge:
        return JSONResponse({"error": "recording too large"}, status_code=413)
    except OSError as exc:
        # Disk full or read-only: not acknowledged, so the PBX keeps the file and sends it again.
        log.error("cannot store an uploaded recording: %s", exc.strerror or exc)
        reason = f"ClientHub cannot store the recording now ({exc.strerror or 'I/O error'})"
        return JSONResponse({"error": reason + "; send it again later"}, status_code=507)
    except FetchError as exc:  # neither .mp3 nor .wav, and no ffmpeg to convert it
        return JSONResponse({"error": str(exc)}, status_code=415)
    body = {"event": "recording", "callId": call_id, "file": saved}
    with session_scope(app.state.engine) as s:
        files.record(
            s.connection(),
            sha256=saved["file_id"],
            size=saved["size"],
            name=saved["name"],
            media_type=saved["media_type"],
            channel="cti",
            source=source,
        )
    stored = await app.state.ingest.store(
        IncomingEvent(
            channel="cti",
            source=source,
            external_id=f"{call_id}:recording:{saved['file_id'][:16]}"[:255],
            event_type="recording",
            headers={},
            content_type="application/json",
            body=json.dumps(body, ensure_ascii=False).encode(),
        )
    )
    headers = {"X-ClientHub-Duplicate": "1" if stored.duplicate else "0"}
    return JSONResponse({}, headers=headers)


def _keep(fh: Any, filename: str, settings: Settings) -> dict[str, Any]:
    """Stream the upload into the store; convert or refuse a format Bitrix24 does not take."""
    store = files.store_for(settings)
    head = fh.read(16)
    fh.seek(0)
    ext = sniff(head)
    if ext is None and not can_convert(settings):
        raise FetchError("not .mp3 or .wav, and ffmpeg is not installed to convert it", retry=False)
    sha, size = store.put_stream(
        iter(lambda: fh.read(1 << 20), b""), max_bytes=settings.recording_max_bytes
    )
    if ext is None:
        got = convert(store, sha, settings)
        sha, size, ext = got.sha256, got.size, got.ext
    stem = files.safe_name(filename, "recording").rsplit(".", 1)[0]
    return {"file_id": sha, "name": f"{stem}.{ext}", "size": size, "media_type": FORMATS[ext]}


# -- the deal card -----------------------------------------------------------------------------
def _phones(engine: Any, deal_id: int) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        rows = s.execute(
            select(Appeal.author_phone)
            .where(Appeal.crm_entity == "deal", Appeal.crm_entity_id == deal_id)
            .where(Appeal.author_phone.is_not(None))
            .distinct()
        ).scalars()
        return sorted({p for p in rows if p})


@router.post(PLACEMENT_PATH, response_class=HTMLResponse)
async def blacklist_card(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    form = await read_form(request)
    tokens = verify_app(engine, settings, form.get("DOMAIN"), form.get("APPLICATION_TOKEN"))
    deal = str(placement_options(form).get("ID") or "")
    if not deal.isdigit():
        raise HTTPException(400, "no deal id in PLACEMENT_OPTIONS")
    user = await run_in_threadpool(current_user, tokens, form.get("AUTH_ID"))
    phones = await run_in_threadpool(_phones, engine, int(deal))
    token = sign({"domain": tokens.domain, "user": user, "phones": phones}, settings)
    return _page(request, settings, phones=phones, token=token)


@router.post(f"{PLACEMENT_PATH}/add", response_class=HTMLResponse)
async def blacklist_add(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    form = await read_form(request)
    signed = unsign(str(form.get("token") or ""), settings)
    phone = str(form.get("phone") or "")
    if phone not in signed.get("phones", []):
        raise HTTPException(403, "this number is not on the deal")
    actor = f"bitrix24:{signed.get('domain')}:user{signed.get('user') or '?'}"
    reason = str(form.get("reason") or "").strip()[:500] or None

    def add() -> blacklist.BlacklistResult:
        with session_scope(request.app.state.engine) as s:
            return blacklist.add_phone(s, phone=phone, actor=actor, reason=reason)

    try:
        done = await run_in_threadpool(add)
    except blacklist.BlacklistError as exc:
        return _page(request, settings, error=str(exc))
    said = "уже был в чёрном списке" if done.already else "добавлен в чёрный список"
    return _page(request, settings, notice=f"Номер {done.phone} {said}.")


def _page(request: Request, settings: Settings, **context: Any) -> HTMLResponse:
    action = f"{settings.effective_public_url()}{PLACEMENT_PATH}/add"
    return templates.TemplateResponse(
        request, "bitrix24/blacklist.html", {"action": action, "phones": [], **context}
    )


def bind_placement(client: Bitrix24Client, settings: Settings) -> bool:
    """Bind the deal-card action once (a duplicate bind is refused); True when bound now."""
    handler = f"{settings.effective_public_url()}{PLACEMENT_PATH}"
    for row in client.call("placement.get").result or []:
        if str(row.get("placement", "")).upper() == PLACEMENT and row.get("handler") == handler:
            return False
    client.call(
        "placement.bind",
        {
            "PLACEMENT": PLACEMENT,
            "HANDLER": handler,
            "TITLE": "В чёрный список",
            "LANG_ALL": {"ru": {"TITLE": "В чёрный список"}, "en": {"TITLE": "Blacklist"}},
        },
    )
    return True
