"""The VK API client: form-encoded POSTs to ``{base_url}/{method}``, API 5.199.

VK answers HTTP 200 with either ``{"response": …}`` or ``{"error": {"error_code", "error_msg"}}``
(Schema ``base_error``). Codes 6 ("Too many requests per second"), 9 ("Flood control") and
10 ("Internal server error") are transient; the rest are permanent. The token travels in the
``Authorization`` header, never in the body or the URL, so no request dump shows it.
"""

from __future__ import annotations

import hashlib
import json
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

PLATFORM = "vk"
API_VERSION = "5.199"
DEFAULT_BASE_URL = "https://api.vk.ru/method"
GROUP_TOKEN_RATE = 20.0  # requests/s per community token (dev.vk.ru/ru/api/api-requests)
# How long to wait after error 6 and error 9; VK gives no retry hint of its own.
ERROR_RETRY_AFTER = {6: 1.0, 9: 30.0, 10: 2.0, 1: 2.0}
MAX_MESSAGE_CHARS = 4096  # vkbottle splits here; Schema allows 9000 but clients truncate earlier
MAX_CHUNKS = 8


class VkClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        version: str = API_VERSION,
        timeout: float = 10.0,
        rate_per_second: float = GROUP_TOKEN_RATE,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise PermanentError(PLATFORM, "no community token configured (secret 'token')")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.retry = retry or RetryPolicy()
        self._limiter = RateLimiter.shared("vk", rate_per_second, rate_per_second)
        self._key = token_key(token)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> Any:
        form = {k: _form_value(v) for k, v in params.items() if v is not None}
        form["v"] = self.version
        return with_retries(PLATFORM, method, self.retry, lambda: self._call_once(method, form))

    def _call_once(self, method: str, form: dict[str, str]) -> Any:
        self._limiter.acquire(self._key)
        try:
            r = self._http.post(
                f"{self.base_url}/{method}",
                data=form,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as exc:
            raise transport_error(PLATFORM, exc) from None
        if r.status_code >= 500 or r.status_code == 429:
            raise TransientError(PLATFORM, f"{method}: HTTP {r.status_code}", status=r.status_code)
        try:
            data = r.json()
        except ValueError:
            raise TransientError(
                PLATFORM, f"{method}: HTTP {r.status_code}, body is not JSON", status=r.status_code
            ) from None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            err = data["error"]
            code = int(err.get("error_code") or 0)
            detail = f"{method}: error {code}: {err.get('error_msg', '')}"
            if code in ERROR_RETRY_AFTER:
                raise TransientError(
                    PLATFORM, detail, code=code, retry_after=ERROR_RETRY_AFTER[code]
                )
            raise PermanentError(PLATFORM, detail, code=code)
        if not isinstance(data, dict) or "response" not in data:
            raise PermanentError(PLATFORM, f"{method}: unexpected answer {str(data)[:200]}")
        return data["response"]

    # -- the calls ClientHub makes -----------------------------------------------------------
    def send_message(
        self,
        *,
        peer_id: int,
        text: str,
        random_id: int,
        reply_to_cmid: int | None = None,
    ) -> int:
        forward = None
        if reply_to_cmid is not None:
            # ``forward`` with is_reply quotes by conversation_message_id, which works in chats
            # too, where a community bot sees message ids as 0 (messages.send, Schema).
            forward = {
                "peer_id": peer_id,
                "conversation_message_ids": [reply_to_cmid],
                "is_reply": True,
            }
        result = self.call(
            "messages.send", peer_id=peer_id, message=text, random_id=random_id, forward=forward
        )
        if isinstance(result, int):
            return result
        raise PermanentError(PLATFORM, f"messages.send: unexpected response {str(result)[:200]}")

    def create_comment(
        self,
        *,
        owner_id: int,
        post_id: int,
        text: str,
        from_group: int,
        reply_to_comment: int | None,
        guid: str,
    ) -> int:
        result = self.call(
            "wall.createComment",
            owner_id=owner_id,
            post_id=post_id,
            from_group=from_group,
            message=text,
            reply_to_comment=reply_to_comment,
            guid=guid,
        )
        if isinstance(result, dict) and isinstance(result.get("comment_id"), int):
            return int(result["comment_id"])
        raise PermanentError(PLATFORM, f"wall.createComment: unexpected {str(result)[:200]}")

    def get_long_poll_server(self, group_id: int) -> dict[str, Any]:
        result = self.call("groups.getLongPollServer", group_id=group_id)
        if not isinstance(result, dict) or not {"server", "key", "ts"} <= set(result):
            raise PermanentError(PLATFORM, f"groups.getLongPollServer: unexpected {result!r}"[:300])
        return {"server": str(result["server"]), "key": str(result["key"]), "ts": str(result["ts"])}

    def long_poll_check(self, server: str, key: str, ts: str, wait: int) -> dict[str, Any]:
        """One ``a_check``: ``{ts, updates}`` or ``{failed: 1|2|3}``. Not rate limited: it is
        not an API method call."""
        try:
            r = self._http.get(
                server,
                params={"act": "a_check", "key": key, "ts": ts, "wait": wait},
                timeout=wait + 10,
            )
        except httpx.HTTPError as exc:
            raise transport_error(PLATFORM, exc) from None
        if r.status_code != 200:
            raise TransientError(PLATFORM, f"long poll: HTTP {r.status_code}", status=r.status_code)
        data = r.json()
        if not isinstance(data, dict):
            raise TransientError(PLATFORM, "long poll: answer is not an object")
        return data


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def random_ids(reply_id: str, chunks: int) -> list[int]:
    """VK's idempotency key for ``messages.send``: an int32, unique per sender, the same on every
    retry of the same reply. A numeric reply id maps without collisions (``id * 8 + chunk``, up
    to 2**28 replies); any other id is hashed into the same range."""
    if chunks > MAX_CHUNKS:
        raise PermanentError(
            PLATFORM, f"reply too long: {chunks} messages of {MAX_MESSAGE_CHARS} characters"
        )
    if reply_id.isdigit() and 0 < int(reply_id) < 2**28:
        base = int(reply_id)
    else:
        base = int.from_bytes(hashlib.sha256(reply_id.encode()).digest()[:4], "big") % 2**28
    return [base * MAX_CHUNKS + i for i in range(chunks)]
