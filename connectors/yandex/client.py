"""A client for the Yandex Business cabinet's internal endpoints — UNOFFICIAL.

Yandex has no reviews API (research/channels.md §5). The cabinet page itself calls (as modelled
by PyPI ``ya-business-api``, "not affiliated with Yandex"):
- ``GET /sprav/api/{permanent_id}/reviews?ranking=by_time&page=N`` with the browser session's
  cookies ``Session_id``/``sessionid2`` -> ``{page, currentState, list: {pager{limit, offset,
  total}, items[], csrf_token}}``, newest first;
- ``POST /sprav/api/ugcpub/business-answer`` ``{reviewId, text, answerCsrfToken,
  reviewsCsrfToken}`` with ``X-CSRF-Token`` -> the body ``OK``.
The session is a person's browser login: it expires, and Passport may ask for a captcha or a
second factor. A 401/403/488, a redirect (to Passport) or a non-JSON page raises
``SessionRefused``; nobody can renew it but a person, so the poller alerts and keeps trying.
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
from connectors.reviews import SessionRefused

PLATFORM = "yandex"
DEFAULT_BASE_URL = "https://yandex.ru"
REFUSED = {401, 403, 488}  # 488: what the cabinet answers an invalid session (ya-business-api)


class YandexBusinessClient:
    def __init__(
        self,
        *,
        session_id: str,
        session_id2: str,
        cookie_i: str = "",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        rate_per_second: float = 1.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not session_id or not session_id2:
            raise SessionRefused(PLATFORM, "no session cookies (secrets session_id, session_id2)")
        cookies = {"Session_id": session_id, "sessionid2": session_id2}
        if cookie_i:
            cookies["i"] = cookie_i
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._key = token_key(session_id)
        self._limiter = RateLimiter.shared("yandex", rate_per_second, max(1.0, rate_per_second))
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            cookies=cookies,
            follow_redirects=False,  # a redirect means Passport wants a login
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> YandexBusinessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        def once() -> httpx.Response:
            self._limiter.acquire(self._key)
            try:
                r = self._http.request(method, f"{self.base_url}{path}", **kwargs)
            except httpx.HTTPError as exc:
                raise transport_error(PLATFORM, exc) from None
            if r.status_code in REFUSED or 300 <= r.status_code < 400:
                raise SessionRefused(
                    PLATFORM, f"{what}: HTTP {r.status_code}: log in to Yandex Business again"
                )
            if r.status_code == 429 or r.status_code >= 500:
                hint = r.headers.get("retry-after")
                raise TransientError(
                    PLATFORM,
                    f"{what}: HTTP {r.status_code}",
                    status=r.status_code,
                    retry_after=float(hint) if hint and hint.isdigit() else None,
                )
            if r.status_code >= 400:
                raise PermanentError(
                    PLATFORM, f"{what}: HTTP {r.status_code}", status=r.status_code
                )
            return r

        return with_retries(PLATFORM, what, self.retry, once)

    def reviews_page(self, permanent_id: str, page: int = 1) -> dict[str, Any]:
        """``list`` of one page: ``{pager, items, csrf_token}``."""
        r = self._request(
            "reviews",
            "GET",
            f"/sprav/api/{permanent_id}/reviews",
            params={"ranking": "by_time", "page": page},
        )
        try:
            data = r.json()
        except ValueError:
            raise SessionRefused(
                PLATFORM, "reviews: an HTML page instead of JSON (captcha?)"
            ) from None
        listing = data.get("list") if isinstance(data, dict) else None
        if not isinstance(listing, dict):
            raise PermanentError(PLATFORM, "reviews: the answer has no 'list'")
        return listing

    def answer(self, *, review_id: str, text: str, answer_csrf: str, reviews_csrf: str) -> None:
        body = {
            "reviewId": review_id,
            "text": text,
            "answerCsrfToken": answer_csrf,
            "reviewsCsrfToken": reviews_csrf,
        }
        r = self._request(
            "business-answer",
            "POST",
            "/sprav/api/ugcpub/business-answer",
            json=body,
            headers={"X-CSRF-Token": reviews_csrf},
        )
        if r.text.strip() != "OK":
            raise PermanentError(PLATFORM, f"business-answer: unexpected answer {r.text[:80]!r}")
