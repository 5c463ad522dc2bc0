"""POST /hooks/{channel}/{source}: verify, store durably, then acknowledge (invariant 1).

Nothing else happens in the request: parsing, routing and delivery run later in the worker. Every
refusal is answered with a reason and recorded in ``rejected_requests``.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from connectors import get_connector
from connectors.base import InboundRequest, Rejected
from hub.ingest import IngestWriter
from hub.storage.raw_events import IncomingEvent, Rejection
from hub.storage.sources import SourceCache

router = APIRouter()

# Headers worth keeping with the raw event: they carry signatures, event types and ids that a
# replay may need. Everything else (cookies, auth) stays out of the database.
KEPT_HEADERS = {
    "content-type",
    "user-agent",
    "x-forwarded-for",
    "x-real-ip",
    "x-telegram-bot-api-secret-token",
    "idempotency-key",
    "x-request-id",
    "x-clienthub-event",
    "x-retry-counter",  # VK numbers its re-sends of an unacknowledged Callback event
}
_EXCERPT = 512


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _kept_headers(request: Request) -> dict[str, str]:
    kept = {k: v for k, v in request.headers.items() if k in KEPT_HEADERS or k.startswith("x-vk")}
    # Secrets are verified, not stored.
    kept.pop("x-telegram-bot-api-secret-token", None)
    return kept


def client_address(request: Request, trusted: list[str]) -> str | None:
    """The TCP peer; behind a trusted proxy, the last X-Forwarded-For hop it did not add itself."""
    peer = request.client.host if request.client else None
    if not peer or not trusted:
        return peer
    nets = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def is_trusted(addr: str) -> bool:
        try:
            return any(ipaddress.ip_address(addr) in n for n in nets)
        except ValueError:
            return False

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


@router.post("/hooks/{channel}/{source}")
async def receive(channel: str, source: str, request: Request) -> Response:
    app = request.app
    writer: IngestWriter = app.state.ingest
    sources: SourceCache = app.state.sources
    limit: int = app.state.settings.max_body_bytes
    content_type_header = request.headers.get("content-type", "")
    content_type = content_type_header.split(";")[0].strip().lower()
    body = b""

    async def refuse(status: int, reason: str, *, keep_body: bool = True) -> Response:
        declared = request.headers.get("content-length")
        await writer.reject(
            Rejection(
                path=request.url.path,
                status_code=status,
                reason=reason,
                channel=channel[:64],
                source=source[:128],
                remote_addr=request.client.host if request.client else None,
                content_type=content_type_header,
                content_length=int(declared) if declared and declared.isdigit() else len(body),
                headers=_kept_headers(request),
                body_excerpt=body[:_EXCERPT] if keep_body else None,
            )
        )
        return JSONResponse({"ok": False, "error": reason}, status_code=status)

    connector = get_connector(channel)
    if connector is None:
        return await refuse(404, f"unknown channel {channel!r}", keep_body=False)
    source_config = sources.get(channel, source)
    if source_config is None:
        return await refuse(
            404, f"unknown source {source!r} for channel {channel!r}", keep_body=False
        )
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        return await refuse(413, f"body larger than {limit} bytes", keep_body=False)
    if not body:
        return await refuse(400, "empty body")
    inbound = InboundRequest(
        method=request.method,
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
        content_type=content_type,
        remote_addr=client_address(request, app.state.settings.trusted_proxies),
    )
    try:
        verified = connector.verify(inbound, source_config)
    except Rejected as exc:
        return await refuse(exc.status, exc.reason)
    if verified.store:
        stored = await writer.store(
            IncomingEvent(
                channel=channel,
                source=source,
                external_id=verified.external_id,
                event_type=verified.event_type,
                headers=_kept_headers(request),
                content_type=content_type_header or None,
                body=body,
            )
        )
        headers = {
            "X-ClientHub-Event": str(stored.raw_event_id),
            "X-ClientHub-Duplicate": "1" if stored.duplicate else "0",
        }
    else:
        headers = {}
    return Response(
        verified.response_body,
        status_code=verified.response_status,
        media_type=verified.response_media_type,
        headers=headers,
    )


@router.post("/hooks/{channel}/{source}/{event_path:path}")
async def receive_on_path(channel: str, source: str, event_path: str, request: Request) -> Response:
    """Platforms that post every event kind to its own path under one base URL (Mango's
    ``{base}/events/call``, UIS notifications): the same endpoint; the connector reads the
    event kind from ``InboundRequest.path``."""
    return await receive(channel, source, request)
