"""The sandbox portal as its users would see it (deals, contacts, Open Lines chats, calls), and
the operator's side of a conversation: a reply written here takes the path a real operator's
does. A chat reply is the sandbox's own operator message, which fires
``OnImConnectorMessageAdd`` at ClientHub's application handler; a deal-card reply opens the
``CRM_DEAL_DETAIL_ACTIVITY`` placement through the sandbox and submits ClientHub's form from it.
Nothing here writes ClientHub's reply tables: the relay must be the one the portal drives.

Only in sandbox mode: with a real portal connected the page says so and links to it.
"""

from __future__ import annotations

import logging
import re
from html import unescape
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Mount

from hub.bitrix24.factory import SANDBOX_MOUNT, portal_mode
from hub.bitrix24.sandbox import Portal
from hub.bitrix24.sandbox import openlines_http as sandbox_ol
from hub.db import session_scope
from hub.http.params import MAX_ID, IdPath
from hub.settings import Settings
from hub.storage.ui_queries import add_audit
from hub.storage.users import SessionUser
from hub.ui import sandbox_view as view
from hub.ui.labels import portal_url
from hub.ui.security import require
from hub.ui.templating import render, templates

router = APIRouter(prefix="/ui/sandbox")
log = logging.getLogger("clienthub.ui")
TABS = ("deals", "contacts", "chats", "calls")
MAX_REPLY = 20_000
_FORM = re.compile(r'<form[^>]*id="clienthub-reply"[^>]*>.*?</form>', re.S)
_ACTION = re.compile(r'action="([^"]+)"')
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def mounted_portal(request: Request) -> Portal | None:
    """The sandbox this process serves at /sandbox (``create_app`` mounts it in sandbox mode)."""
    for route in request.app.routes:
        if isinstance(route, Mount) and route.path == SANDBOX_MOUNT:
            return getattr(route.app.state, "portal", None)  # type: ignore[attr-defined]
    return None


# The nav shows the page only where there is a sandbox to show (base.html).
templates.env.globals["has_sandbox"] = lambda request: mounted_portal(request) is not None


def _portal(request: Request) -> Portal:
    portal = mounted_portal(request)
    if portal is None:
        raise HTTPException(404, "песочница не запущена: ClientHub подключён к другому порталу")
    return portal


def _absent(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    return render(
        request, "pages/sandbox.html", nav="sandbox", view="absent",
        mode=portal_mode(settings), portal=portal_url(settings),
    )  # fmt: skip


@router.get("")
def sandbox_page(
    request: Request,
    tab: str = "deals",
    before: int | None = Query(None, ge=1, le=MAX_ID),
    viewer: SessionUser = Depends(require("sandbox.read")),
) -> Response:
    portal = mounted_portal(request)
    if portal is None:
        return _absent(request)
    tab = tab if tab in TABS else "deals"
    page = getattr(view, tab)(portal.store, before)
    return render(
        request, "pages/sandbox.html", nav="sandbox", view=tab, tab=tab, page=page,
        counts=view.counts(portal.store), notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.get("/deals/{item_id}")
def deal_page(
    request: Request, item_id: IdPath, viewer: SessionUser = Depends(require("sandbox.read"))
) -> Response:
    portal = mounted_portal(request)
    if portal is None:
        return _absent(request)
    found = view.deal(portal.store, item_id)
    if found is None:
        raise HTTPException(404, f"в песочнице нет сделки {item_id}")
    return render(
        request, "pages/sandbox.html", nav="sandbox", view="deal", tab="deals", d=found,
        counts=view.counts(portal.store), users=view.portal_users(portal.store),
        notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.get("/chats/{chat_id}")
def chat_page(
    request: Request, chat_id: IdPath, viewer: SessionUser = Depends(require("sandbox.read"))
) -> Response:
    portal = mounted_portal(request)
    if portal is None:
        return _absent(request)
    found = view.chat(portal.store, chat_id)
    if found is None:
        raise HTTPException(404, f"в песочнице нет чата {chat_id}")
    return render(
        request, "pages/sandbox.html", nav="sandbox", view="chat", tab="chats", c=found,
        counts=view.counts(portal.store), users=view.portal_users(portal.store),
        notice=request.query_params.get("notice"),
    )  # fmt: skip


def _text(text: str) -> str | None:
    text = text.strip()
    return text if text and len(text) <= MAX_REPLY else None


def _audit(request: Request, viewer: SessionUser, kind: str, obj: int, details: Any) -> None:
    with session_scope(request.app.state.engine) as s:
        add_audit(
            s, actor=viewer.login, action=f"sandbox.{kind}_reply", object_type=f"sandbox_{kind}",
            object_id=str(obj), details=details,
        )  # fmt: skip


@router.post("/chats/{chat_id}/reply")
def chat_reply(
    request: Request,
    chat_id: IdPath,
    text: str = Form(""),
    user_id: int = Form(1, ge=1, le=MAX_ID),
    viewer: SessionUser = Depends(require("sandbox.reply")),
) -> Response:
    """The operator writes in the chat: the sandbox stores the message and fires the event
    ClientHub's application handler turns into a reply (hub/bitrix24/app_events.py)."""
    portal = _portal(request)
    body = _text(text)
    if body is None:
        return RedirectResponse(f"/ui/sandbox/chats/{chat_id}?notice=empty", status_code=303)
    if portal.store.scalar("SELECT 1 FROM ol_chats WHERE chat_id = ?", (chat_id,)) is None:
        raise HTTPException(404, f"в песочнице нет чата {chat_id}")
    try:
        said = sandbox_ol.operator_message(
            portal, {"chat_id": chat_id, "text": body, "user_id": user_id}
        )
    except HTTPException:  # no application installed: the message stays in the portal only
        return RedirectResponse(f"/ui/sandbox/chats/{chat_id}?notice=no-app", status_code=303)
    statuses = [d["status"] for d in said["deliveries"]]
    _audit(request, viewer, "chat", chat_id, {"message_id": said["message_id"], "events": statuses})
    notice = "sent" if statuses and all(s == 200 for s in statuses) else "not-delivered"
    return RedirectResponse(f"/ui/sandbox/chats/{chat_id}?notice={notice}", status_code=303)


def _card_form(html: str, settings: Settings) -> tuple[str, str] | None:
    """The reply form of ClientHub's deal-card page: its action and signed token. Only a form
    that posts back to this ClientHub is followed."""
    form = _FORM.search(html)
    action = _ACTION.search(form.group(0)) if form else None
    token = _TOKEN.search(form.group(0)) if form else None
    if not (action and token):
        return None
    url = unescape(action.group(1))
    if not url.startswith(settings.effective_public_url() + "/"):
        return None
    return url, unescape(token.group(1))


@router.post("/deals/{item_id}/reply")
def deal_reply(
    request: Request,
    item_id: IdPath,
    text: str = Form(""),
    user_id: int = Form(1, ge=1, le=MAX_ID),
    viewer: SessionUser = Depends(require("sandbox.reply")),
) -> Response:
    """«Ответить клиенту» in the deal card: the sandbox opens the placement at ClientHub (as the
    portal does when a user clicks it), and the page's own form is submitted."""
    portal = _portal(request)
    settings: Settings = request.app.state.settings
    back = f"/ui/sandbox/deals/{item_id}"
    body = _text(text)
    if body is None:
        return RedirectResponse(f"{back}?notice=empty", status_code=303)
    options = {"ID": str(item_id)}
    try:
        opened = sandbox_ol.open_placement(
            portal, {"placement": "CRM_DEAL_DETAIL_ACTIVITY", "options": options,
                     "user_id": user_id},
        )  # fmt: skip
    except HTTPException:
        return RedirectResponse(f"{back}?notice=no-placement", status_code=303)
    form = _card_form(opened["html"], settings) if opened["status"] == 200 else None
    if form is None:
        return RedirectResponse(f"{back}?notice=no-target", status_code=303)
    try:
        r = httpx.post(form[0], data={"token": form[1], "text": body},
                       headers={"Accept": "application/json"}, timeout=30)  # fmt: skip
        answer = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("deal-card reply through the sandbox failed: %s", type(exc).__name__)
        return RedirectResponse(f"{back}?notice=not-delivered", status_code=303)
    _audit(request, viewer, "deal", item_id, {"reply_id": answer.get("reply_id"),
                                               "error": answer.get("error")})  # fmt: skip
    notice = "queued" if r.status_code == 200 and answer.get("reply_id") else "not-delivered"
    return RedirectResponse(f"{back}?notice={notice}", status_code=303)
