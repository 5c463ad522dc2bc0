"""The Telegram Bot API client: JSON POSTs to ``{base_url}/bot{token}/{method}``.

Answers are ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}``. 429 and 5xx are transient (429 carries ``retry_after``); 400,
403 ("bot was blocked by the user"), 404 and 409 (getUpdates while a webhook is set) are
permanent. The token is part of every URL, so errors never quote the URL (see platform_http).
``sendMessage`` has no idempotency key: it is retried only when Telegram cannot have sent it
(connection refused, 429); a timeout, a dropped connection or a 5xx after the request went out is
raised at once as ambiguous (hub/replies.py then asks a human instead of sending it twice).
Flood limits (Bot FAQ, PTB ``constants.FloodLimit``): about 30 messages/s overall, one per second
per chat and 20 a minute per group.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.platform_http import (
    PermanentError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    token_key,
    transport_error,
    with_retries,
)
from hub.netguard import FetchPolicy, FetchRefused, guarded_client

PLATFORM = "telegram"
DEFAULT_BASE_URL = "https://api.telegram.org"
MAX_MESSAGE_CHARS = 4096  # PTB constants.MessageLimit.MAX_TEXT_LENGTH
ALLOWED_UPDATES = ["message", "edited_message", "channel_post", "edited_channel_post"]
SEND_METHODS = {"sendMessage"}


class TelegramClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        rate_per_second: float = 30.0,
        chat_rate_per_second: float = 1.0,
        group_rate_per_second: float = 20 / 60,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise PermanentError(PLATFORM, "no bot token configured (secret 'token')")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._key = token_key(token)
        self._global = RateLimiter.shared("telegram", rate_per_second, rate_per_second)
        self._per_chat = RateLimiter.shared("telegram-chat", chat_rate_per_second, 1)
        self._per_group = RateLimiter.shared("telegram-group", group_rate_per_second, 1)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TelegramClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, payload: dict[str, Any], *, timeout: float | None = None) -> Any:
        payload = {k: v for k, v in payload.items() if v is not None}
        return with_retries(
            PLATFORM,
            method,
            self.retry,
            lambda: self._call_once(method, payload, timeout),
            write=method in SEND_METHODS,
        )

    def _pace(self, method: str, payload: dict[str, Any]) -> None:
        if method not in SEND_METHODS:
            return
        self._global.acquire(self._key)
        chat = payload.get("chat_id")
        if chat is not None:
            self._per_chat.acquire(f"{self._key}:{chat}")
            if isinstance(chat, int) and chat < 0:
                self._per_group.acquire(f"{self._key}:{chat}")

    def _call_once(self, method: str, payload: dict[str, Any], timeout: float | None) -> Any:
        self._pace(method, payload)
        try:
            r = self._http.post(
                f"{self.base_url}/bot{self._token}/{method}",
                json=payload,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise transport_error(PLATFORM, exc) from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("ok") is True:
            return data.get("result")
        code = int(data.get("error_code") or r.status_code) if isinstance(data, dict) else None
        description = data.get("description", "") if isinstance(data, dict) else r.text[:200]
        params = (data or {}).get("parameters") or {} if isinstance(data, dict) else {}
        detail = f"{method}: {r.status_code} {description}".strip()
        if r.status_code == 429 or r.status_code >= 500:
            retry_after = params.get("retry_after")
            raise TransientError(
                PLATFORM,
                detail,
                status=r.status_code,
                code=code,
                retry_after=float(retry_after) if retry_after is not None else None,
                unprocessed=r.status_code == 429,  # a flood refusal: nothing was sent
            )
        raise PermanentError(PLATFORM, detail, status=r.status_code, code=code)

    # -- the calls ClientHub makes -----------------------------------------------------------
    def send_message(
        self,
        *,
        chat_id: int | str,
        text: str,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        reply_parameters = (
            {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
            if reply_to_message_id is not None
            else None
        )
        result = self.call(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": text,
                "reply_parameters": reply_parameters,
                "message_thread_id": message_thread_id,
            },
        )
        if not isinstance(result, dict) or "message_id" not in result:
            raise PermanentError(PLATFORM, f"sendMessage: unexpected result {str(result)[:200]}")
        return result

    def get_file(self, file_id: str) -> dict[str, Any]:
        result = self.call("getFile", {"file_id": file_id})
        if not isinstance(result, dict) or not result.get("file_path"):
            raise PermanentError(PLATFORM, "getFile: no file_path (file too big or expired)")
        return result

    def download(self, file_path: str, policy: FetchPolicy | None = None) -> httpx.Response:
        """The file's bytes (``{base}/file/bot{token}/{file_path}``, valid for an hour).

        ``file_path`` comes from Telegram's answer; under ``policy`` (hub/netguard.py) the download
        goes only to the API's own host and to a public address (SSRF)."""
        url = f"{self.base_url}/file/bot{self._token}/{file_path}"
        try:
            if policy is None:
                r = self._http.get(url)
            else:
                with guarded_client(policy, timeout=self._http.timeout) as http:
                    r = http.get(url)
        except FetchRefused as exc:
            raise PermanentError(PLATFORM, f"file download refused: {exc.reason}") from None
        except httpx.HTTPError as exc:
            raise transport_error(PLATFORM, exc) from None
        if r.status_code != 200:
            raise (TransientError if r.status_code >= 500 else PermanentError)(
                PLATFORM, f"file download: HTTP {r.status_code}", status=r.status_code
            )
        return r

    def set_webhook(self, url: str, secret_token: str) -> Any:
        return self.call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": ALLOWED_UPDATES},
        )

    def delete_webhook(self) -> Any:
        return self.call("deleteWebhook", {"drop_pending_updates": False})

    def get_webhook_info(self) -> dict[str, Any]:
        return dict(self.call("getWebhookInfo", {}) or {})

    def get_updates(self, offset: int | None, timeout: int) -> list[dict[str, Any]]:
        result = self.call(
            "getUpdates",
            {"offset": offset, "timeout": timeout, "allowed_updates": ALLOWED_UPDATES},
            timeout=timeout + 10,
        )
        if not isinstance(result, list):
            raise PermanentError(PLATFORM, "getUpdates: result is not a list")
        return result
