"""A fake Telegram Bot API: webhook delivery with Telegram's re-delivery, and the methods
ClientHub calls (``sendMessage``, ``getFile`` and file download, ``setWebhook``,
``deleteWebhook``, ``getWebhookInfo``, ``getUpdates``).

Delivery sends the update with ``X-Telegram-Bot-Api-Secret-Token`` and repeats it on any non-2xx
answer, waiting 1 s, then doubling (tdlib/telegram-bot-api ``WebhookActor.cpp``; ``delay_scale``
shrinks the waits for tests). Errors use the Bot API envelope ``{"ok": false, "error_code",
"description", "parameters"}``; getUpdates answers 409 while a webhook is set, as Telegram does.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass
class Delivery:
    statuses: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


def _error(code: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


class FakeTelegram:
    def __init__(self, *, token: str, bot_id: int = 5555555) -> None:
        self.token = token
        self.bot_id = bot_id
        self.sent: list[dict[str, Any]] = []  # what the customers saw
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self.webhook: dict[str, Any] = {}
        self.updates: list[dict[str, Any]] = []
        self.chats_blocked: set[int] = set()
        self._fail: list[tuple[str, int, int | None]] = []
        self._ids = itertools.count(9001)
        self.app = self._build()

    # -- test controls ---------------------------------------------------------------------
    def fail_next(self, method: str, code: int, retry_after: int | None = None) -> None:
        self._fail.append((method, code, retry_after))

    def add_file(self, file_id: str, file_path: str, content: bytes) -> None:
        self.files[file_id] = (file_path, content)

    def deliver(
        self,
        url: str,
        update: dict[str, Any],
        *,
        secret: str | None,
        max_attempts: int = 5,
        delay_scale: float = 0.0,
    ) -> Delivery:
        body = json.dumps(update, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        result, delay = Delivery(), 1.0
        for _ in range(max_attempts):
            try:
                result.statuses.append(
                    httpx.post(url, content=body, headers=headers, timeout=10).status_code
                )
            except httpx.HTTPError:
                result.statuses.append(0)
            if result.acknowledged:
                break
            time.sleep(delay * delay_scale)
            delay = min(delay * 2, 60.0)
        return result

    # -- the Bot API ---------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot{token}/{method}")
        async def method(token: str, method: str, request: Request) -> JSONResponse:
            if token != self.token:
                return _error(401, "Unauthorized")
            payload = await request.json() if await request.body() else {}
            if self._fail and self._fail[0][0] == method:
                _, code, retry_after = self._fail.pop(0)
                if code == 429:
                    return _error(
                        429,
                        f"Too Many Requests: retry after {retry_after}",
                        retry_after=retry_after,
                    )
                return _error(code, "Internal Server Error" if code >= 500 else "Bad Request")
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                return _error(404, "Not Found")
            return handler(payload)

        @app.get("/file/bot{token}/{file_path:path}")
        async def download(token: str, file_path: str) -> Response:
            for path, content in self.files.values():
                if token == self.token and path == file_path:
                    return Response(content, media_type="application/octet-stream")
            return _error(404, "Not Found")

        return app

    def _m_sendMessage(self, p: dict[str, Any]) -> JSONResponse:
        chat_id, text = p.get("chat_id"), p.get("text")
        if chat_id is None or not text:
            return _error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        if chat_id in self.chats_blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        message = {
            "message_id": next(self._ids),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "ClientHub"},
            "chat": {"id": chat_id, "type": "private" if int(chat_id) > 0 else "supergroup"},
            "date": int(time.time()),
            "text": text,
        }
        self.sent.append(
            {
                "chat_id": chat_id,
                "text": text,
                "reply_parameters": p.get("reply_parameters"),
                "message_thread_id": p.get("message_thread_id"),
                "message_id": message["message_id"],
            }
        )
        return JSONResponse({"ok": True, "result": message})

    def _m_getFile(self, p: dict[str, Any]) -> JSONResponse:
        found = self.files.get(str(p.get("file_id")))
        if found is None:
            return _error(400, "Bad Request: invalid file_id")
        path, content = found
        return JSONResponse(
            {
                "ok": True,
                "result": {
                    "file_id": p["file_id"],
                    "file_unique_id": "u",
                    "file_size": len(content),
                    "file_path": path,
                },
            }
        )

    def _m_setWebhook(self, p: dict[str, Any]) -> JSONResponse:
        secret = p.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and secret.replace("_", "").replace("-", "").isalnum()
        ):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {
            "url": p.get("url", ""),
            "secret_token": secret,
            "allowed_updates": p.get("allowed_updates"),
        }
        return JSONResponse({"ok": True, "result": True, "description": "Webhook was set"})

    def _m_deleteWebhook(self, p: dict[str, Any]) -> JSONResponse:
        self.webhook = {}
        return JSONResponse({"ok": True, "result": True, "description": "Webhook was deleted"})

    def _m_getWebhookInfo(self, p: dict[str, Any]) -> JSONResponse:
        info = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return JSONResponse({"ok": True, "result": info})

    def _m_getUpdates(self, p: dict[str, Any]) -> JSONResponse:
        if self.webhook.get("url"):
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        if offset:  # confirming: updates below the offset are forgotten, as Telegram does
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        return JSONResponse({"ok": True, "result": self.updates[:100]})
