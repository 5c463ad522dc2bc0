"""A fake VK: the Callback API sender (with VK's retries) and the API methods ClientHub calls.

Callback: ``deliver`` POSTs an event envelope with the community's ``secret`` added, and sends it
again, with ``X-Retry-Counter``, as long as the answer is not HTTP 200 with the body ``ok``
(dev.vk.com callback getting-started; vksdk ``callback/context.go``). API: form-encoded
``POST /method/<name>`` with ``Authorization: Bearer``, answering ``{"response"}`` or VK's error
envelope ``{"error": {"error_code", "error_msg", "request_params"}}``. ``messages.send`` honours
``random_id`` as VK does: a repeat returns the first message's id and sends nothing.
Bots Long Poll: ``groups.getLongPollServer`` plus ``GET /longpoll?act=a_check``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ERRORS = {
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    9: "Flood control",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
}


@dataclass
class Delivery:
    attempts: list[tuple[int, str]] = field(default_factory=list)  # (status, body) per try

    @property
    def acknowledged(self) -> bool:
        return bool(self.attempts) and self.attempts[-1] == (200, "ok")


class FakeVk:
    def __init__(self, *, group_id: int, token: str, secret: str | None = None) -> None:
        self.group_id = group_id
        self.token = token
        self.secret = secret
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.messages: list[dict[str, Any]] = []  # what the customers actually received
        self.comments: list[dict[str, Any]] = []
        self._by_random_id: dict[int, int] = {}
        self._ids = itertools.count(1001)
        self._fail: list[tuple[str, int]] = []
        self._longpoll: list[dict[str, Any]] = []
        self.longpoll_key = "lp-key-1"
        self.app = self._build()

    # -- test controls ---------------------------------------------------------------------
    def fail_next(self, method: str, code: int, times: int = 1) -> None:
        self._fail.extend([(method, code)] * times)

    def queue_longpoll(self, event: dict[str, Any]) -> None:
        self._longpoll.append(event)

    def envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        out = dict(event)
        if self.secret is not None:
            out["secret"] = self.secret
        return out

    def deliver(
        self, url: str, event: dict[str, Any], *, max_attempts: int = 5, pause: float = 0.0
    ) -> Delivery:
        """Send one Callback event until VK would consider it delivered (200 + ``ok``)."""
        body = json.dumps(self.envelope(event), ensure_ascii=False).encode()
        result = Delivery()
        for attempt in range(max_attempts):
            headers = {"Content-Type": "application/json", "User-Agent": "VKCallbackAPI"}
            if attempt:
                headers["X-Retry-Counter"] = str(attempt)
            try:
                r = httpx.post(url, content=body, headers=headers, timeout=10)
                result.attempts.append((r.status_code, r.text))
            except httpx.HTTPError as exc:
                result.attempts.append((0, type(exc).__name__))
            if result.acknowledged:
                break
            time.sleep(pause)
        return result

    def confirm(self, url: str) -> httpx.Response:
        """The handshake VK sends when a server is added: no secret, answer = the code."""
        body = {"type": "confirmation", "group_id": self.group_id}
        return httpx.post(url, json=body, timeout=10)

    # -- the API ------------------------------------------------------------------------------
    def _error(self, code: int, method: str, params: dict[str, str]) -> JSONResponse:
        shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
        shown.append({"key": "method", "value": method})
        return JSONResponse(
            {"error": {"error_code": code, "error_msg": ERRORS[code], "request_params": shown}}
        )

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/method/{method}")
        async def method(method: str, request: Request) -> JSONResponse:
            params = {k: str(v) for k, v in (await request.form()).items()}
            self.calls.append((method, params))
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {self.token}" and params.get("access_token") != self.token:
                return self._error(5, method, params)
            if self._fail and self._fail[0][0] == method:
                return self._error(self._fail.pop(0)[1], method, params)
            handler = {
                "messages.send": self._send,
                "wall.createComment": self._comment,
                "groups.getLongPollServer": self._lp_server,
            }.get(method)
            if handler is None:
                return self._error(3, method, params)
            return handler(method, params, request)

        @app.get("/longpoll")
        async def longpoll(act: str, key: str, ts: str, wait: int = 25) -> JSONResponse:
            if key != self.longpoll_key:
                return JSONResponse({"failed": 2})
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and len(self._longpoll) <= int(ts):
                await asyncio.sleep(0.02)
            updates = self._longpoll[int(ts) :]
            return JSONResponse({"ts": str(len(self._longpoll)), "updates": updates})

        return app

    def _send(self, method: str, p: dict[str, str], request: Request) -> JSONResponse:
        if "peer_id" not in p or "random_id" not in p or p.get("v") != "5.199":
            return self._error(100, method, p)
        random_id = int(p["random_id"])
        if random_id in self._by_random_id:  # VK drops a repeated random_id
            return JSONResponse({"response": self._by_random_id[random_id]})
        message_id = next(self._ids)
        self._by_random_id[random_id] = message_id
        forward = json.loads(p["forward"]) if "forward" in p else None
        self.messages.append(
            {
                "id": message_id,
                "peer_id": int(p["peer_id"]),
                "text": p.get("message", ""),
                "forward": forward,
            }
        )
        return JSONResponse({"response": message_id})

    def _comment(self, method: str, p: dict[str, str], request: Request) -> JSONResponse:
        if "owner_id" not in p or "post_id" not in p:
            return self._error(100, method, p)
        guid = p.get("guid")
        for c in self.comments:
            if guid and c["guid"] == guid:  # "Unique identifier to avoid repeated comments"
                return JSONResponse({"response": {"comment_id": c["id"], "parents_stack": []}})
        comment_id = next(self._ids)
        reply_to = int(p["reply_to_comment"]) if "reply_to_comment" in p else None
        self.comments.append(
            {
                "id": comment_id,
                "owner_id": int(p["owner_id"]),
                "post_id": int(p["post_id"]),
                "from_group": int(p.get("from_group", 0)),
                "reply_to_comment": reply_to,
                "text": p.get("message", ""),
                "guid": guid,
            }
        )
        stack = [reply_to] if reply_to else []
        return JSONResponse({"response": {"comment_id": comment_id, "parents_stack": stack}})

    def _lp_server(self, method: str, p: dict[str, str], request: Request) -> JSONResponse:
        if int(p.get("group_id", 0)) != self.group_id:
            return self._error(100, method, p)
        server = str(request.base_url).rstrip("/") + "/longpoll"
        return JSONResponse({"response": {"server": server, "key": self.longpoll_key, "ts": "0"}})
