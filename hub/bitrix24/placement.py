"""The "Ответить клиенту" action in the deal card (placement ``CRM_DEAL_DETAIL_ACTIVITY``).

For channels without an Open Lines chat (reviews, e-mail, forms with an address) staff answer
from the deal: the page shows the conversation ClientHub holds for the deal and a reply box; the
reply becomes a ``reply.send`` job like a chat answer, and its outcome is written to the deal's
timeline (hub/bitrix24/openlines.py). Bound with ``useBuiltInInterface=Y``: Bitrix24 draws the
form itself from the layout the page passes to ``BX24.placement.call('setLayout')`` (docs:
api-reference/widgets/crm/detail-activity-area.md); the same page works as plain HTML when the
placement is opened as an ordinary iframe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from connectors import get_connector
from hub import replies
from hub.bitrix24 import plan
from hub.bitrix24.app_events import (
    placement_options,
    read_form,
    sign,
    templates,
    unsign,
    verify_app,
)
from hub.db import session_scope
from hub.models import Appeal, Reply
from hub.settings import Settings
from hub.storage import replies as store
from hub.storage.b24_tokens import Tokens

router = APIRouter(prefix="/bitrix24/placement", tags=["bitrix24"])
log = logging.getLogger("clienthub.bitrix24")
MAX_REPLY_CHARS = 20_000
STATE_NAMES = {
    "pending": "в очереди",
    "sending": "отправляется",
    "sent": "доставлен",
    "failed": "не доставлен",
    "uncertain": "доставка не подтверждена",
    "deleted": "удалён",
}


@dataclass(frozen=True)
class PortalUser:
    """The Bitrix24 user behind a placement call, as ``user.current`` describes them."""

    id: int
    name: str = ""
    last_name: str = ""
    email: str = ""

    @property
    def full_name(self) -> str:
        return " ".join(x for x in (self.name, self.last_name) if x) or f"#{self.id}"


def portal_user(tokens: Tokens, auth_id: Any) -> PortalUser | None:
    """Who opened the page: ``user.current`` with the user's own token from the placement call,
    sent to the endpoint stored at install (never to one the request names), so it also proves
    the token is alive on that portal. None when it cannot be told."""
    if not auth_id:
        return None
    url = tokens.client_endpoint.rstrip("/") + "/user.current"
    try:
        r = httpx.post(url, json={"auth": str(auth_id)}, timeout=10)
        result = r.json().get("result") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if not isinstance(result, dict):
        return None
    try:
        user_id = int(result["ID"])
    except (KeyError, TypeError, ValueError):
        return None
    text = {k: str(result.get(k) or "").strip() for k in ("NAME", "LAST_NAME", "EMAIL")}
    return PortalUser(user_id, text["NAME"], text["LAST_NAME"], text["EMAIL"])


def current_user(tokens: Tokens, auth_id: Any) -> int | None:
    """The id of :func:`portal_user` (the deal card and the blacklist action need no more)."""
    user = portal_user(tokens, auth_id)
    return user.id if user else None


def _answerable(appeals: list[Appeal]) -> Appeal | None:
    """The customer's latest message on a channel ClientHub can answer."""
    for appeal in reversed(appeals):
        if hasattr(get_connector(appeal.channel), "send_reply"):
            return appeal
    return None


def _thread(appeals: list[Appeal], answers: list[Reply]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for a in appeals:
        who = a.author_name or a.author_email or a.author_phone or "Клиент"
        channel = plan.CHANNEL_NAMES.get(a.channel, a.channel)
        items.append(
            {"at": a.received_at, "who": f"{who} ({channel})", "text": a.text, "me": False}
        )
    for r in answers:
        state = STATE_NAMES.get(r.state, r.state)
        text = r.body or replies.format_reply(r.text, r.channel)
        error = f" — {r.last_error}" if r.last_error and r.state != "sent" else ""
        items.append(
            {"at": r.created_at, "who": f"Ответ: {state}{error}", "text": text, "me": True}
        )
    return sorted(items, key=lambda i: i["at"])


def _context(engine: Any, deal_id: int) -> tuple[list[dict[str, Any]], Appeal | None]:
    with session_scope(engine, read_only=True) as s:
        appeals = store.appeals_of_deal(s, deal_id=deal_id)
        answers = store.replies_for(s, [a.id for a in appeals if a.id])
    return _thread(appeals, answers), _answerable(appeals)


def layout(thread: list[dict[str, Any]], target: Appeal | None) -> dict[str, Any]:
    """The LayoutDto for the built-in interface: the conversation, a reply box, two buttons."""
    text = "\n\n".join(f"{i['who']}:\n{i['text']}" for i in thread[-10:]) or "Нет обращений"
    blocks: dict[str, Any] = {
        "thread": {"type": "text", "properties": {"value": text, "multiline": True}},
    }
    if target is not None:
        channel = plan.CHANNEL_NAMES.get(target.channel, target.channel)
        blocks["reply"] = {
            "type": "textarea",
            "properties": {"title": f"Ответ клиенту ({channel})", "placeholder": "Текст ответа"},
        }
    return {
        "blocks": blocks,
        "primaryButton": {"title": "Отправить", "state": "normal" if target else "disabled"},
        "secondaryButton": {"title": "Отмена"},
    }


def _page(request: Request, settings: Settings, **context: Any) -> HTMLResponse:
    base = f"{settings.effective_public_url()}/bitrix24/placement"
    return templates.TemplateResponse(
        request,
        "bitrix24/deal_reply.html",
        {"action": f"{base}/deal/reply", "script": f"{base}/deal.js", **context},
    )


SCRIPT = Path(__file__).resolve().parents[2] / "web" / "templates" / "bitrix24" / "deal_reply.js"


@router.get("/deal.js")
async def deal_script() -> Response:
    """The page's code as a file: the embedded pages allow no inline script (CSP)."""
    return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8")


@router.post("/deal", response_class=HTMLResponse)
async def deal_card(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    form = await read_form(request)
    tokens = verify_app(engine, settings, form.get("DOMAIN"), form.get("APPLICATION_TOKEN"))
    options = placement_options(form)
    deal = str(options.get("ID") or options.get("entityId") or "")
    if not deal.isdigit():
        raise HTTPException(400, "no deal id in PLACEMENT_OPTIONS")
    user = await run_in_threadpool(current_user, tokens, form.get("AUTH_ID"))
    thread, target = await run_in_threadpool(_context, engine, int(deal))
    token = sign({"domain": tokens.domain, "deal": int(deal), "user": user}, settings)
    return _page(
        request,
        settings,
        thread=thread,
        target=target,
        token=token,
        layout=layout(thread, target),
        notice=None,
        error=None,
    )


@router.post("/deal/reply")
async def deal_reply(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    form = await read_form(request)
    signed = unsign(str(form.get("token") or ""), settings)
    deal_id, user = int(signed["deal"]), signed.get("user")
    text = str(form.get("text") or "").strip()
    wants_json = "json" in request.headers.get("accept", "")
    error = None
    if not text:
        error = "Пустой ответ"
    elif len(text) > MAX_REPLY_CHARS:
        error = f"Ответ длиннее {MAX_REPLY_CHARS} символов"

    def queue_reply() -> tuple[int | None, str | None]:
        with session_scope(engine) as s:
            target = _answerable(store.appeals_of_deal(s, deal_id=deal_id))
            if target is None:
                return None, "У сделки нет обращения, на которое ClientHub может ответить"
            reply_id = replies.store_card_reply(s, appeal=target, text=text, user_id=user)
        log.info("deal-card reply queued", extra={"deal_id": deal_id, "reply_id": reply_id})
        return reply_id, None

    reply_id = None
    if error is None:
        reply_id, error = await run_in_threadpool(queue_reply)
    if wants_json:
        status = 200 if error is None else 400
        return JSONResponse({"reply_id": reply_id, "error": error}, status_code=status)
    thread, target = await run_in_threadpool(_context, engine, deal_id)
    return _page(
        request,
        settings,
        thread=thread,
        target=target,
        token=sign({"domain": signed["domain"], "deal": deal_id, "user": user}, settings),
        layout=layout(thread, target),
        notice=None if error else "Ответ поставлен в очередь на отправку",
        error=error,
    )
