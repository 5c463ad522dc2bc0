"""What Bitrix24 sends the ClientHub application: events and the connector settings page.

``POST /bitrix24/events`` takes every bound event (hub/bitrix24/app_setup.py ``EVENTS``) as a PHP
bracket form. The only authenticity check Bitrix24 offers is ``auth[application_token]``
(docs: api-reference/events/safe-event-handlers.md), compared in constant time with the token
stored at install; an unknown event type is refused, never guessed at. Events are not retried
by Bitrix24, so each handler stores what it needs and commits before answering.

``POST /bitrix24/connector`` is the ``SETTING_CONNECTOR`` page Bitrix24 opens in the Contact
Center (docs: api-reference/widgets/setting-connector.md); its button switches the connector on
for the line named in ``PLACEMENT_OPTIONS`` (``imconnector.activate`` + ``connector.data.set``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import crypto, queue, replies
from hub.bitrix24 import phpquery
from hub.bitrix24.app_setup import app_client, connector_id
from hub.bitrix24.errors import Bitrix24Error
from hub.bitrix24.factory import NotConfigured
from hub.db import session_scope
from hub.settings import Settings
from hub.storage import b24_tokens
from hub.storage import replies as store
from hub.storage.b24_tokens import Tokens

router = APIRouter(prefix="/bitrix24", tags=["bitrix24"])
log = logging.getLogger("clienthub.bitrix24")
templates = Jinja2Templates(
    directory=str(Path(__file__).resolve().parents[2] / "web" / "templates")
)
FORM_TTL = 3600  # a settings page or deal card left open longer must be reopened


async def read_form(request: Request) -> dict[str, Any]:
    """Query string plus body (PHP bracket form or JSON): placements send parameters in both."""
    params = phpquery.parse(request.url.query)
    body = (await request.body()).decode("utf-8", "replace")
    if "json" in request.headers.get("content-type", ""):
        try:
            data = json.loads(body or "{}")
        except ValueError:
            raise HTTPException(400, "body is not JSON") from None
        params.update(data if isinstance(data, dict) else {})
    elif body:
        params.update(phpquery.parse(body))
    return params


def verify_app(engine: Engine, settings: Settings, domain: Any, token: Any) -> Tokens:
    """The stored app for ``domain`` whose application_token equals ``token`` (constant time)."""
    name = str(domain or "").strip().lower()
    pinned = settings.b24_portal_domain.strip().lower()
    if not name or (pinned and name != pinned):
        raise HTTPException(403, "unknown portal")
    with session_scope(engine, read_only=True) as s:
        tokens = b24_tokens.load(s, name, settings)
    # No stored token: an empty secret would verify against anyone's empty token.
    if tokens is None or not tokens.application_token:
        raise HTTPException(403, "the application is not installed for this portal")
    if not hmac.compare_digest(tokens.application_token.encode(), str(token or "").encode()):
        log.warning("bitrix24 request with a wrong application_token", extra={"portal": name})
        raise HTTPException(403, "application_token does not match")
    return tokens


def sign(payload: dict[str, Any], settings: Settings) -> str:
    """A form token for pages shown in Bitrix24's iframe: encrypted, authenticated, dated."""
    return crypto.fernet(settings).encrypt(json.dumps(payload).encode()).decode()


def unsign(token: str, settings: Settings) -> dict[str, Any]:
    try:
        raw = crypto.fernet(settings).decrypt(token.encode(), ttl=FORM_TTL)
    except (InvalidToken, ValueError):
        raise HTTPException(403, "the form has expired: reopen it from Bitrix24") from None
    return json.loads(raw)


def placement_options(form: Mapping[str, Any]) -> dict[str, Any]:
    raw = form.get("PLACEMENT_OPTIONS") or "{}"
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(str(raw))
    except ValueError:
        raise HTTPException(400, "PLACEMENT_OPTIONS is not JSON") from None
    return value if isinstance(value, dict) else {}


# -- events ------------------------------------------------------------------------------------
EventHandler = Callable[[Session, Any, Tokens, Settings], dict[str, Any]]


def _ours(data: Mapping[str, Any], settings: Settings, key: str = "CONNECTOR") -> bool:
    return str(data.get(key) or "").lower() == connector_id(settings)


def _messages(data: Any) -> list[dict[str, Any]]:
    raw = data.get("MESSAGES") if isinstance(data, Mapping) else None
    items = list(raw.values()) if isinstance(raw, Mapping) else raw
    return [m for m in items or [] if isinstance(m, Mapping)]


def on_message_add(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    if not isinstance(data, Mapping) or not _ours(data, settings):
        return {"ignored": "another connector"}
    line = data.get("LINE")
    created = replies.store_operator_messages(
        s,
        line_id=int(line) if str(line or "").isdigit() else None,
        connector=connector_id(settings),
        messages=_messages(data),
    )
    return {"stored": len(created)}


def _changes(s: Session, data: Any, settings: Settings, action: str) -> dict[str, Any]:
    if not isinstance(data, Mapping) or not _ours(data, settings):
        return {"ignored": "another connector"}
    queued = 0
    for m in _messages(data):
        im = m.get("im") or {}
        try:
            chat_id, message_id = int(im.get("chat_id")), int(im.get("message_id"))
        except (TypeError, ValueError):
            continue
        reply = store.by_b24_message(s, chat_id=chat_id, message_id=message_id)
        if reply is None or reply.id is None:
            continue
        text = str((m.get("message") or {}).get("text") or "")
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        payload = {"reply_id": reply.id, "action": action, "text": text}
        queued += queue.enqueue(s, replies.CHANGE_KIND, f"{reply.id}:{action}:{digest}", payload)
    return {"queued": queued}


def on_message_update(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    return _changes(s, data, settings, "edit")


def on_message_delete(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    return _changes(s, data, settings, "delete")


def on_line_delete(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    line = int(data) if str(data or "").isdigit() else None  # `data` is the line id itself
    if line is None:
        return {"ignored": "no line id"}
    return {"lines_off": store.deactivate_lines(s, domain=tokens.domain, line_id=line)}


def on_status_delete(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    # Lower-case keys in this event (docs: on-im-connector-status-delete.md).
    if not isinstance(data, Mapping) or not _ours(data, settings, "connector"):
        return {"ignored": "another connector"}
    line = int(data["line"]) if str(data.get("line") or "").isdigit() else None
    n = store.deactivate_lines(
        s, domain=tokens.domain, connector=connector_id(settings), line_id=line
    )
    return {"lines_off": n}


def on_uninstall(s: Session, data: Any, tokens: Tokens, settings: Settings) -> dict[str, Any]:
    """The app is gone: its tokens are useless and its lines are off. Appeals and replies stay."""
    store.deactivate_lines(s, domain=tokens.domain)
    store.forget_portal(s, domain=tokens.domain)
    return {"uninstalled": True}


EVENT_HANDLERS: dict[str, EventHandler] = {
    "ONIMCONNECTORMESSAGEADD": on_message_add,
    "ONIMCONNECTORMESSAGEUPDATE": on_message_update,
    "ONIMCONNECTORMESSAGEDELETE": on_message_delete,
    "ONIMCONNECTORLINEDELETE": on_line_delete,
    "ONIMCONNECTORSTATUSDELETE": on_status_delete,
    "ONAPPUNINSTALL": on_uninstall,
}


@router.post("/events")
async def events(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    form = await read_form(request)
    auth = form.get("auth") if isinstance(form.get("auth"), Mapping) else {}
    tokens = verify_app(engine, settings, auth.get("domain"), auth.get("application_token"))
    if auth.get("member_id") and tokens.member_id and auth["member_id"] != tokens.member_id:
        raise HTTPException(403, "member_id does not match the installed portal")
    event = str(form.get("event") or "").upper()
    handler = EVENT_HANDLERS.get(event)
    if handler is None:
        raise HTTPException(400, f"unsupported event {event[:64]!r}")

    def run() -> dict[str, Any]:
        with session_scope(engine) as s:
            return handler(s, form.get("data"), tokens, settings)

    result = await run_in_threadpool(run)
    log.info("bitrix24 event", extra={"event": event, **result})
    return {"event": event, **result}


# -- the connector settings page (SETTING_CONNECTOR) -------------------------------------------
def _settings_page(request: Request, settings: Settings, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "bitrix24/connector_settings.html",
        {
            "connector_name": settings.b24_connector_name,
            "action": f"{settings.effective_public_url()}/bitrix24/connector/activate",
            **context,
        },
    )


@router.post("/connector", response_class=HTMLResponse)
async def connector_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    form = await read_form(request)
    tokens = verify_app(engine, settings, form.get("DOMAIN"), form.get("APPLICATION_TOKEN"))
    options = placement_options(form)
    if str(options.get("CONNECTOR") or "").lower() != connector_id(settings):
        raise HTTPException(400, "this page belongs to another connector")
    line = str(options.get("LINE") or "")
    if not line.isdigit():
        raise HTTPException(400, "no open line in PLACEMENT_OPTIONS")

    def active() -> bool:
        with session_scope(engine, read_only=True) as s:
            row = store.active_line(s, connector=connector_id(settings))
            return row is not None and row.line_id == int(line)

    token = sign({"domain": tokens.domain, "line": int(line)}, settings)
    is_active = await run_in_threadpool(active)
    return _settings_page(request, settings, line=line, active=is_active, token=token, error=None)


@router.post("/connector/activate", response_class=HTMLResponse)
async def connector_activate(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    form = await read_form(request)
    signed = unsign(str(form.get("token") or ""), settings)
    line, domain = int(signed["line"]), str(signed["domain"])
    on = str(form.get("action") or "activate") == "activate"
    conn_id = connector_id(settings)

    def apply() -> str | None:
        try:
            with app_client(settings, engine) as client:
                client.call(
                    "imconnector.activate",
                    {"CONNECTOR": conn_id, "LINE": line, "ACTIVE": "1" if on else "0"},
                )
                if on:
                    public = settings.effective_public_url()
                    data = {"ID": f"{conn_id}_line{line}", "URL": public, "URL_IM": public}
                    client.call(
                        "imconnector.connector.data.set",
                        {"CONNECTOR": conn_id, "LINE": line, "DATA": {**data, "NAME": "ClientHub"}},
                    )
        except (Bitrix24Error, NotConfigured) as exc:
            return str(exc)
        with session_scope(engine) as s:
            if on:  # one line at a time: the newest activation wins
                store.deactivate_lines(s, domain=domain, connector=conn_id)
            store.set_line(s, domain=domain, connector=conn_id, line_id=line, active=on)
        return None

    error = await run_in_threadpool(apply)
    token = sign({"domain": domain, "line": line}, settings)
    return _settings_page(
        request, settings, line=str(line), active=on and error is None, token=token, error=error
    )
