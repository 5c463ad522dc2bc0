"""A client for the 2GIS business cabinet's internal API (account.2gis.com) — UNOFFICIAL.

2GIS publishes no reviews API (research/channels.md §4). These are the endpoints the cabinet's
own web page calls, as integrators use them:
- ``POST /api/1.0/users/auth`` ``{"login", "password"}`` with the web client's ``x-api-key``
  -> ``result.access_token``, then ``Authorization: Bearer …``;
- ``GET /api/1.0/presence/branch/{branch_id}/reviews?limit=&pinRequestedFirst=false`` ->
  ``result.items[]`` newest first; the next page is asked with ``offsetDate`` = the last item's
  ``dateCreated``;
- ``GET|POST /api/1.0/presence/reviews/{review_id}/comments`` (``catalog=2gis``;
  ``isOfficialAnswer: true`` for the company's official answer).
They may change or vanish without notice. An expired token (401) is renewed by logging in again
once; a refused login raises ``SessionRefused``.
"""

from __future__ import annotations

import threading
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
from connectors.reviews import SessionRefused

PLATFORM = "2gis"
DEFAULT_BASE_URL = "https://api.account.2gis.com"
WEB_API_KEY = "accweb96f8"  # the cabinet web page's key, seen in integrator code


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class TwoGisClient:
    # Access tokens by (base URL, login): one login serves every branch of the same account.
    _tokens: dict[str, str] = {}
    _tokens_lock = threading.Lock()

    def __init__(
        self,
        *,
        login: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        web_api_key: str = WEB_API_KEY,
        timeout: float = 15.0,
        rate_per_second: float = 2.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._login, self._password = login, password
        self.base_url = base_url.rstrip("/")
        self._api_key = web_api_key
        self.retry = retry or RetryPolicy()
        self._key = token_key(f"{self.base_url}|{login}")
        self._limiter = RateLimiter.shared("2gis", rate_per_second, max(1.0, rate_per_second))
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TwoGisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session --------------------------------------------------------------------------------
    def _token(self, *, fresh: bool = False) -> str:
        with self._tokens_lock:
            token = None if fresh else self._tokens.get(self._key)
        if token:
            return token
        if not self._login or not self._password:
            raise SessionRefused(PLATFORM, "no cabinet login/password (secrets login, password)")
        r = self._send(
            "POST", "/api/1.0/users/auth", {"login": self._login, "password": self._password}
        )
        if r.status_code in (400, 401, 403):
            raise SessionRefused(
                PLATFORM, f"login refused (HTTP {r.status_code}): check the cabinet password"
            )
        data = self._json("login", r)
        token = str(((data or {}).get("result") or {}).get("access_token") or "")
        if not token:
            raise PermanentError(PLATFORM, "login answered without result.access_token")
        with self._tokens_lock:
            self._tokens[self._key] = token
        return token

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"x-api-key": self._api_key, "locale": "ru"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._limiter.acquire(self._key)
        try:
            return self._http.request(
                method, f"{self.base_url}{path}", json=body, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise transport_error(PLATFORM, exc) from None

    def _json(self, what: str, r: httpx.Response) -> Any:
        if r.status_code == 429 or r.status_code >= 500:
            raise TransientError(
                PLATFORM,
                f"{what}: HTTP {r.status_code}",
                status=r.status_code,
                retry_after=_retry_after(r),
            )
        if r.status_code >= 400:
            raise PermanentError(PLATFORM, f"{what}: HTTP {r.status_code}", status=r.status_code)
        try:
            return r.json()
        except ValueError:
            raise PermanentError(PLATFORM, f"{what}: the answer is not JSON") from None

    def call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """An authorised call: a 401 renews the token once; transient faults are retried."""

        def once() -> Any:
            r = self._send(method, path, body, params, self._token())
            if r.status_code == 401:
                r = self._send(method, path, body, params, self._token(fresh=True))
                if r.status_code == 401:
                    raise SessionRefused(PLATFORM, f"{path}: a fresh token is refused too")
            return self._json(path.split("?")[0], r)

        return with_retries(PLATFORM, path, self.retry, once)

    # -- reviews --------------------------------------------------------------------------------
    def branch_reviews(
        self, branch_id: str, *, limit: int = 50, offset_date: str | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "pinRequestedFirst": "false"}
        if offset_date:
            params["offsetDate"] = offset_date
        data = self.call("GET", f"/api/1.0/presence/branch/{branch_id}/reviews", params=params)
        items = ((data or {}).get("result") or {}).get("items") or []
        return [i for i in items if isinstance(i, dict)]

    def comments(self, review_id: str) -> list[dict[str, Any]]:
        data = self.call(
            "GET", f"/api/1.0/presence/reviews/{review_id}/comments", params={"catalog": "2gis"}
        )
        items = ((data or {}).get("result") or {}).get("items") or []
        return [i for i in items if isinstance(i, dict)]

    def post_answer(self, review_id: str, text: str) -> dict[str, Any]:
        body = {"catalog": "2gis", "isOfficialAnswer": True, "text": text}
        data = self.call("POST", f"/api/1.0/presence/reviews/{review_id}/comments", body=body)
        result = (data or {}).get("result")
        return result if isinstance(result, dict) else {}
