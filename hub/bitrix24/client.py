"""The one Bitrix24 REST client: explicit endpoint and credentials, timeouts, the shared rate
limit, retries by the Go SDK's rules, typed errors.

It never reads global settings (hub/bitrix24/factory.py builds it). Retries:
- ``QUERY_LIMIT_EXCEEDED`` and connection failures before sending: always retried, with
  jittered backoff; the former also penalizes the shared bucket so every worker slows down.
- ``OPERATION_TIME_LIMIT``: the method is blocked until the portal's ``operating_reset_at``.
- ``expired_token``: one refresh, then the call is repeated.
- A timeout after sending, a dropped connection or a code-less 5xx: retried only for methods that
  read. A write raises :class:`AmbiguousResult` so the caller looks up before creating again;
  a ``batch`` that writes is never retried here (delivery re-plans it from the outbox).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from hub.bitrix24.batch import Batch, BatchResult
from hub.bitrix24.errors import (
    AmbiguousResult,
    AuthError,
    Bitrix24Error,
    ExpiredToken,
    MethodError,
    NotExecuted,
    OperationTimeLimit,
    PortalUnavailable,
    QueryLimitExceeded,
    error_from_body,
)
from hub.bitrix24.ratelimit import MemoryRateLimiter, RateLimiter
from hub.timeutil import utcnow

log = logging.getLogger("clienthub.bitrix24")

PAGE_SIZE = 50
_READ_SUFFIXES = (".get", ".list", ".fields", ".findbycomm", ".search", ".current", ".types")
_READ_METHODS = {"profile", "scope", "methods", "app.info", "user.get", "department.get"}


def is_read(method: str) -> bool:
    method = method.lower()
    return method in _READ_METHODS or method.endswith(_READ_SUFFIXES)


class Auth(Protocol):
    """How calls are addressed and authorised: an inbound webhook or an application token."""

    portal: str  # host name, names the shared rate bucket

    def url(self, method: str) -> str: ...

    def params(self) -> dict[str, Any]: ...

    def refresh(self, rejected: dict[str, Any]) -> bool:
        """Called on ``expired_token`` with the params that were refused; True to repeat."""
        ...


class WebhookAuth:
    """``https://portal/rest/{user}/{code}/``: the code is the credential, so it is kept out of
    every message (hub.logging redacts ``/rest/N/code`` too)."""

    def __init__(self, webhook_url: str) -> None:
        self.base = webhook_url.rstrip("/") + "/"
        self.portal = httpx.URL(self.base).host

    def url(self, method: str) -> str:
        return self.base + method

    def params(self) -> dict[str, Any]:
        return {}

    def refresh(self, rejected: dict[str, Any]) -> bool:
        return False

    def __repr__(self) -> str:
        return f"WebhookAuth(portal={self.portal!r})"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    max_elapsed_seconds: float = 90.0  # then the error goes up; the job queue backs off longer

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        exp = min(self.max_delay_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        jittered = exp * rng.uniform(0.5, 1.5)
        return max(jittered, retry_after or 0.0)


@dataclass(frozen=True)
class Response:
    result: Any
    total: int | None = None
    next: int | None = None
    time: Mapping[str, Any] | None = None


class Bitrix24Client:
    def __init__(
        self,
        auth: Auth,
        *,
        timeout: float | httpx.Timeout = 30.0,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        user_agent: str = "ClientHub/0.1",
    ) -> None:
        self.auth = auth
        self.limiter = limiter or MemoryRateLimiter()
        self.retry = retry or RetryPolicy()
        self._sleep, self._now = sleep, now
        self._rng = rng or random.Random()
        t = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0)
        self._http = httpx.Client(
            timeout=t,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": user_agent},
        )
        self._operating_reset: dict[str, float] = {}
        self.requests_sent = 0  # HTTP requests that reached the wire (benchmarks, tests)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Bitrix24Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- single calls --------------------------------------------------------------------------
    def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, safe: bool | None = None
    ) -> Response:
        """Call one method. ``safe`` (default: the method only reads) allows retrying after an
        ambiguous failure."""
        safe = is_read(method) if safe is None else safe
        params = dict(params or {})
        started = time.monotonic()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire(method)
            auth_params = self.auth.params()
            try:
                return self._send(method, {**params, **auth_params})
            except ExpiredToken:
                if refreshed or not self.auth.refresh(auth_params):
                    raise AuthError(method, "expired_token", "token refresh failed") from None
                refreshed = True
                continue
            except OperationTimeLimit as exc:
                wait = self._operation_wait(method, exc)
                self.limiter.block_method(method, self._now() + timedelta(seconds=wait))
                if not self._may_retry(attempt, started, wait):
                    raise
                self._log_retry(method, exc, attempt, wait)
                continue  # acquire() sleeps until the block ends
            except (QueryLimitExceeded, PortalUnavailable, AmbiguousResult) as exc:
                if isinstance(exc, AmbiguousResult) and not safe:
                    raise
                wait = self.retry.delay(attempt, self._rng, exc.retry_after)
                if not self._may_retry(attempt, started, wait):
                    raise
                self._log_retry(method, exc, attempt, wait)
                if isinstance(exc, QueryLimitExceeded):
                    self.limiter.penalize(wait)  # acquire() waits it out, with every worker
                else:
                    self._sleep(wait)

    def _may_retry(self, attempt: int, started: float, wait: float) -> bool:
        elapsed = time.monotonic() - started
        return attempt < self.retry.attempts and elapsed + wait <= self.retry.max_elapsed_seconds

    def _operation_wait(self, method: str, exc: OperationTimeLimit) -> float:
        reset = exc.reset_at or self._operating_reset.get(method)
        if reset:
            return max(1.0, reset - self._now().timestamp())
        return self.retry.max_delay_seconds

    def _log_retry(self, method: str, exc: Bitrix24Error, attempt: int, wait: float) -> None:
        log.warning(
            "bitrix24 retry",
            extra={
                "method": method,
                "code": exc.code or type(exc).__name__,
                "attempt": attempt,
                "wait_s": round(wait, 3),
            },
        )

    def _send(self, method: str, body: dict[str, Any]) -> Response:
        try:
            http = self._http.post(self.auth.url(method), json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise PortalUnavailable(method, "", type(exc).__name__) from None
        except httpx.TransportError as exc:  # sent, answer lost: may have run
            self.requests_sent += 1
            raise AmbiguousResult(method, "", type(exc).__name__) from None
        self.requests_sent += 1
        try:
            payload = http.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            text = http.text[:200] if http.status_code >= 400 else "not a JSON object"
            err = error_from_body(method, http.status_code, text)
            if http.status_code < 400:
                err = MethodError(method, "", "unparseable answer", http.status_code)
            raise _with_retry_after(err, http)
        time_obj = payload.get("time") if isinstance(payload.get("time"), dict) else None
        if time_obj and time_obj.get("operating_reset_at"):
            self._operating_reset[method] = float(time_obj["operating_reset_at"])
        # Community reports of HTTP 200 carrying an error: always read the body.
        if "error" in payload and "result" not in payload:
            reset = self._operating_reset.get(method)
            err = error_from_body(method, http.status_code, payload, reset_at=reset)
            raise _with_retry_after(err, http)
        return Response(
            result=payload.get("result"),
            total=_int_or_none(payload.get("total")),
            next=_int_or_none(payload.get("next")),
            time=time_obj,
        )

    # -- batch ---------------------------------------------------------------------------------
    def batch(self, batch: Batch, *, halt: bool = False, safe: bool | None = None) -> BatchResult:
        """One HTTP request. Retried here only when every command reads, or the caller says
        (``safe``) that every command is safe to repeat."""
        methods = batch.methods()
        if safe is None:
            safe = all(is_read(m) for m in methods.values())
        resp = self.call("batch", {"halt": 1 if halt else 0, "cmd": batch.cmd()}, safe=safe)
        return BatchResult.parse(resp.result, methods)

    # -- lists ---------------------------------------------------------------------------------
    def list_all(
        self, method: str, params: Mapping[str, Any] | None = None, *, items_key: str | None = None
    ) -> Iterator[Any]:
        """Every page through ``start``/``next`` (50 a page)."""
        start = 0
        while True:
            resp = self.call(method, {**(params or {}), "start": start})
            yield from _items(resp.result, items_key)
            if resp.next is None:
                return
            start = resp.next

    def list_fast(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        id_field: str = "ID",
        items_key: str | None = None,
    ) -> Iterator[Any]:
        """Large lists: ``order {ID: ASC}``, ``filter {>ID: last}``, ``start=-1`` skips the
        COUNT (docs: settings/performance/huge-data.md); stop on a short page."""
        params = dict(params or {})
        base_filter = dict(params.pop("filter", {}) or {})
        last = 0
        while True:
            page = list(
                _items(
                    self.call(
                        method,
                        {
                            **params,
                            "filter": {**base_filter, f">{id_field}": last},
                            "order": {id_field: "ASC"},
                            "start": -1,
                        },
                    ).result,
                    items_key,
                )
            )
            yield from page
            if len(page) < PAGE_SIZE:
                return
            last = int(page[-1][id_field])


def _items(result: Any, key: str | None) -> list[Any]:
    if key is not None:
        result = result.get(key, []) if isinstance(result, dict) else []
    return result if isinstance(result, list) else []


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _with_retry_after(err: Bitrix24Error, http: httpx.Response) -> Bitrix24Error:
    header = http.headers.get("retry-after")
    if header and isinstance(err, NotExecuted | AmbiguousResult):
        with contextlib.suppress(ValueError):
            err.retry_after = float(header)
    return err
