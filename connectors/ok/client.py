"""OK (ok.ru) clients: the Graph "Bot API" for group chats and the signed REST API ``fb.do``.

Graph calls carry the group token as ``access_token`` in the query and need
``Content-Type: application/json;charset=utf-8`` on every POST (apiok/documentation
``graph.user.subscribe``). REST calls need an OK application: ``application_key``, an md5 ``sig``
over the sorted parameters plus ``md5(access_token + application_secret_key)``, and a user token
of a group admin. Both answer errors as ``{"error_code", "error_msg"}``. OK documents no rate
limit; ClientHub paces itself (5 requests/s by default) and treats codes 1 (unknown), 2 (service)
and 8 (flood) as transient.

Sending a message or a comment has no idempotency key, so such a write is retried only when OK
cannot have executed it (connection refused, HTTP 429, code 8 flood); a timeout, a dropped
connection, a 5xx or codes 1/2 after the request went out are raised at once as ambiguous
(hub/replies.py then asks a human instead of sending it twice).
"""

from __future__ import annotations

import hashlib
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

PLATFORM = "ok"
DEFAULT_BASE_URL = "https://api.ok.ru"
TRANSIENT_CODES = {1: 2.0, 2: 2.0, 8: 10.0}
REFUSED_CODES = {8}  # FLOOD_BLOCKED: refused before execution
JSON_UTF8 = "application/json;charset=utf-8"


def signature(params: dict[str, str], access_token: str, app_secret: str) -> str:
    """``sig`` of a REST call (PyPI ok-api ``ok_api.py``; aiookru ``session.py``)."""
    secret = hashlib.md5((access_token + app_secret).encode()).hexdigest()
    joined = "".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("access_token", "sig"))
    return hashlib.md5((joined + secret).encode()).hexdigest()


class OkClient:
    def __init__(
        self,
        *,
        token: str = "",
        app_key: str = "",
        app_secret: str = "",
        user_token: str = "",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        rate_per_second: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = token
        self._app_key = app_key
        self._app_secret = app_secret
        self._user_token = user_token
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._limiter = RateLimiter.shared("ok", rate_per_second, rate_per_second)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, what: str, r: httpx.Response) -> Any:
        if r.status_code >= 500 or r.status_code == 429:
            raise TransientError(
                PLATFORM,
                f"{what}: HTTP {r.status_code}",
                status=r.status_code,
                unprocessed=r.status_code == 429,
            )
        try:
            data = r.json()
        except ValueError:
            raise PermanentError(
                PLATFORM, f"{what}: HTTP {r.status_code}, body is not JSON", status=r.status_code
            ) from None
        if isinstance(data, dict) and data.get("error_code") is not None:
            code = int(data["error_code"])
            detail = f"{what}: error {code}: {data.get('error_msg', '')}"
            if code in TRANSIENT_CODES:
                raise TransientError(
                    PLATFORM,
                    detail,
                    code=code,
                    retry_after=TRANSIENT_CODES[code],
                    unprocessed=code in REFUSED_CODES,
                )
            raise PermanentError(PLATFORM, detail, code=code)
        if r.status_code >= 400:
            raise PermanentError(PLATFORM, f"{what}: HTTP {r.status_code}", status=r.status_code)
        return data

    # -- Graph Bot API (group token) ------------------------------------------------------------
    def graph(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, write: bool = False
    ) -> Any:
        if not self._token:
            raise PermanentError(PLATFORM, "no group token configured (secret 'token')")

        def once() -> Any:
            self._limiter.acquire(token_key(self._token))
            try:
                r = self._http.request(
                    method,
                    f"{self.base_url}/graph/{path}",
                    params={"access_token": self._token},
                    json=body,
                    headers={"Content-Type": JSON_UTF8} if body is not None else None,
                )
            except httpx.HTTPError as exc:
                raise transport_error(PLATFORM, exc) from None
            return self._check(f"graph {path.split('?')[0]}", r)

        return with_retries(PLATFORM, path, self.retry, once, write=write)

    def send_message(self, *, chat_id: str, text: str) -> dict[str, Any]:
        result = self.graph(
            "POST",
            f"me/messages/{chat_id}",
            {"recipient": {"chat_id": chat_id}, "message": {"text": text}},
            write=True,
        )
        return result if isinstance(result, dict) else {}

    def subscribe(self, url: str) -> Any:
        return self.graph("POST", "me/subscribe", {"url": url})

    def subscriptions(self) -> list[dict[str, Any]]:
        result = self.graph("GET", "me/subscriptions")
        return list((result or {}).get("subscriptions", []))

    # -- REST fb.do (application key + admin's user token) ---------------------------------------
    def rest(self, method: str, *, write: bool = False, **params: Any) -> Any:
        if not (self._app_key and self._app_secret and self._user_token):
            raise PermanentError(
                PLATFORM, "OK REST needs secrets app_key, app_secret and user_token"
            )
        form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        form.update(application_key=self._app_key, method=method, format="json")
        form["sig"] = signature(form, self._user_token, self._app_secret)
        form["access_token"] = self._user_token

        def once() -> Any:
            self._limiter.acquire(token_key(self._user_token))
            try:
                r = self._http.post(f"{self.base_url}/fb.do", data=form)
            except httpx.HTTPError as exc:
                raise transport_error(PLATFORM, exc) from None
            return self._check(method, r)

        return with_retries(PLATFORM, method, self.retry, once, write=write)

    def group_topics(self, group_id: str, count: int) -> list[str]:
        result = self.rest("discussions.getList", gid=group_id, types="GROUP_TOPIC", count=count)
        items = (result or {}).get("discussions", []) if isinstance(result, dict) else []
        return [
            str(d["object_id"])
            for d in items
            if isinstance(d, dict) and d.get("object_type") == "GROUP_TOPIC"
        ]

    def comments(self, topic_id: str, anchor: str | None, count: int = 100) -> dict[str, Any]:
        result = self.rest(
            "discussions.getComments",
            discussionId=topic_id,
            discussionType="GROUP_TOPIC",
            anchor=anchor or "FIRST",
            direction="FORWARD",
            count=count,
        )
        return result if isinstance(result, dict) else {}

    def add_comment(self, *, topic_id: str, text: str, reply_to: str | None) -> Any:
        params: dict[str, Any] = {
            "entityId": topic_id,
            "entityType": "GROUP_TOPIC",
            "comment": text,
            "as_admin": True,  # "Официальный ответ администратора группы"
        }
        if reply_to:
            params["reply_to_comment_id"] = reply_to
        return self.rest("discussions.addDiscussionComment", write=True, **params)
