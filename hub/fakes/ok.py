"""A fake OK (ok.ru): Bot API webhook delivery and Graph methods, plus the signed REST ``fb.do``
methods the discussions poller and comment replies use.

Graph: ``access_token`` in the query, JSON bodies that must be sent as
``application/json;charset=utf-8``; errors as ``{"error_code", "error_msg"}``. Webhooks are
re-sent when the answer is not 200 (apiok/documentation ``graph.user.subscribe``). REST checks
``sig`` exactly as OK computes it, so a wrong signature fails as it would in production.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.ok.client import signature


@dataclass
class Delivery:
    statuses: list[int] = field(default_factory=list)


def _error(code: int, msg: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": msg, "error_data": None})


class FakeOk:
    def __init__(
        self,
        *,
        token: str,
        app_key: str = "",
        app_secret: str = "",
        user_token: str = "",
        group_id: str = "",
    ) -> None:
        self.token = token
        self.app_key, self.app_secret, self.user_token = app_key, app_secret, user_token
        self.group_id = group_id
        self.sent: list[dict[str, Any]] = []
        self.subscriptions: list[str] = []
        self.topics: dict[str, list[dict[str, Any]]] = {}  # topic id -> comments, oldest first
        self.comments_added: list[dict[str, Any]] = []
        self.rest_calls: list[str] = []
        self._ids = itertools.count(1)
        self.app = self._build()

    def deliver(self, url: str, payload: dict[str, Any], *, max_attempts: int = 3) -> Delivery:
        result = Delivery()
        body = json.dumps(payload, ensure_ascii=False).encode()
        for _ in range(max_attempts):
            try:
                status = httpx.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/json;charset=utf-8"},
                    timeout=5,
                ).status_code
            except httpx.HTTPError:
                status = 0
            result.statuses.append(status)
            if status == 200:
                break
            time.sleep(0.01)
        return result

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/graph/{path:path}", methods=["GET", "POST"])
        async def graph(path: str, request: Request) -> JSONResponse:
            if request.query_params.get("access_token") != self.token:
                return _error(102, "PARAM_SESSION_EXPIRED : Session expired")
            body: dict[str, Any] = {}
            if request.method == "POST":
                if not request.headers.get("content-type", "").startswith("application/json"):
                    return _error(100, "PARAM : Content-Type must be application/json")
                body = json.loads(await request.body() or b"{}")
            if path == "me/subscribe":
                self.subscriptions.append(body["url"])
                return JSONResponse({"success": True})
            if path == "me/subscriptions":
                return JSONResponse(
                    {"subscriptions": [{"url": u, "time": 0} for u in self.subscriptions]}
                )
            if path.startswith("me/messages/"):
                chat_id = path.removeprefix("me/messages/")
                recipient = body.get("recipient", {}).get("chat_id")
                text = body.get("message", {}).get("text")
                if recipient != chat_id or not text:
                    return _error(100, "PARAM : recipient or message.text is missing")
                mid = f"mid:{chat_id.removeprefix('chat:')}.{next(self._ids):x}"
                self.sent.append({"chat_id": chat_id, "text": text, "mid": mid})
                return JSONResponse({"chat_id": chat_id, "message_id": mid})
            return _error(3, "METHOD : Method not found")

        @app.post("/fb.do")
        async def rest(request: Request) -> JSONResponse:
            p = {k: str(v) for k, v in (await request.form()).items()}
            self.rest_calls.append(p.get("method", ""))
            token, sig = p.pop("access_token", ""), p.pop("sig", "")
            if p.get("application_key") != self.app_key or token != self.user_token:
                return _error(102, "PARAM_SESSION_EXPIRED : Session expired")
            if sig != signature(p, token, self.app_secret):
                return _error(104, "PARAM_SIGNATURE : Invalid signature")
            method = p.get("method")
            if method == "discussions.getList":
                items = [
                    {"object_type": "GROUP_TOPIC", "object_id": t, "owner_uid": self.group_id}
                    for t in self.topics
                ]
                return JSONResponse({"discussions": items})
            if method == "discussions.getComments":
                return JSONResponse(self._page(p))
            if method == "discussions.addDiscussionComment":
                cid = f"c{next(self._ids)}"
                self.comments_added.append(
                    {
                        "id": cid,
                        "topic": p["entityId"],
                        "text": p["comment"],
                        "reply_to": p.get("reply_to_comment_id"),
                        "as_admin": p.get("as_admin"),
                    }
                )
                return JSONResponse({"id": cid})
            return _error(3, "METHOD : Method not found")

        return app

    def _page(self, p: dict[str, str]) -> dict[str, Any]:
        comments = self.topics.get(p["discussionId"], [])
        anchor = p.get("anchor", "FIRST")
        start = 0 if anchor == "FIRST" else int(anchor)
        count = int(p.get("count", 100))
        page = comments[start : start + count]
        end = start + len(page)
        return {"comments": page, "anchor": str(end), "has_more": end < len(comments)}
