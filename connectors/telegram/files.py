"""``GET /files/telegram/{source}/{file_id}``: a staff-facing link to a customer's photo, document
or voice message. Telegram's own download URL contains the bot token and expires after an hour,
so appeals carry this link instead and the file is fetched through ``getFile`` when opened."""

from __future__ import annotations

import mimetypes

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from connectors.platform_http import PermanentError, PlatformError
from connectors.telegram import CHANNEL, client_for
from hub.netguard import policy_from_settings
from hub.settings import get_settings

router = APIRouter()


@router.get("/files/telegram/{source}/{file_id}")
async def telegram_file(source: str, file_id: str, request: Request) -> Response:
    config = request.app.state.sources.get(CHANNEL, source)
    if config is None:
        raise HTTPException(404, f"unknown Telegram source {source!r}")

    def fetch() -> tuple[bytes, str]:
        with client_for(config) as client:
            info = client.get_file(file_id)
            path = str(info["file_path"])
            # Only the Bot API's own host, at a public address (hub/netguard.py).
            policy = policy_from_settings(get_settings(), hosts=[httpx.URL(client.base_url).host])
            body = client.download(path, policy).content
        return body, mimetypes.guess_type(path)[0] or "application/octet-stream"

    try:
        body, media_type = await run_in_threadpool(fetch)
    except PermanentError as exc:
        raise HTTPException(404, exc.detail) from None
    except PlatformError as exc:
        raise HTTPException(502, exc.detail) from None
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
