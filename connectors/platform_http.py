"""What every platform client shares: typed errors, a token-bucket rate limiter, a retry loop.

Each platform client (VK, Telegram, OK) is built from an explicit base URL, token and timeouts and
never reads global settings. A client retries a transient failure a few times within one call,
honouring the platform's ``retry_after``; when that is not enough it raises ``TransientError`` and
the job queue retries later (its horizon is hours). ``PermanentError`` means retrying cannot help
(bad token, the user blocked the community, a malformed request).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

log = logging.getLogger("clienthub.platform")
T = TypeVar("T")


class PlatformError(Exception):
    def __init__(
        self, platform: str, detail: str, *, status: int | None = None, code: int | None = None
    ) -> None:
        super().__init__(f"{platform}: {detail}")
        self.platform = platform
        self.detail = detail
        self.status = status
        self.code = code


class TransientError(PlatformError):
    """Worth retrying: network fault, 5xx, rate limit. ``retry_after`` is the platform's hint.

    ``unprocessed`` says the platform certainly did not act on the request (nothing was sent, or
    it was refused before execution: a rate limit). Only then may a write without an
    idempotency key be sent again; any other failure of such a write is ambiguous."""

    def __init__(
        self,
        platform: str,
        detail: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        unprocessed: bool = False,
    ) -> None:
        super().__init__(platform, detail, status=status, code=code)
        self.retry_after = retry_after
        self.unprocessed = unprocessed


class PermanentError(PlatformError):
    """Retrying cannot help: the request, the token or the recipient is wrong."""


def token_key(token: str) -> str:
    """A non-secret key for per-token state (rate limits): the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class RateLimiter:
    """Token buckets keyed by name, shared by every client in the process.

    Platforms limit per token (VK 20 req/s per community token) and per chat (Telegram about one
    message a second), so the bucket outlives a single client object.
    """

    _shared: dict[tuple[str, float, float], RateLimiter] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}

    @classmethod
    def shared(cls, name: str, rate: float, burst: float) -> RateLimiter:
        with cls._shared_lock:
            key = (name, rate, burst)
            if key not in cls._shared:
                cls._shared[key] = cls(rate, burst)
            return cls._shared[key]

    def reserve(self, key: str) -> float:
        """Take one token; returns how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens.get(key, self.burst)
            last = self._stamp.get(key, now)
            tokens = min(self.burst, tokens + (now - last) * self.rate) - 1
            self._tokens[key] = tokens
            self._stamp[key] = now
            return 0.0 if tokens >= 0 else -tokens / self.rate

    def acquire(self, key: str = "") -> None:
        wait = self.reserve(key)
        if wait > 0:
            self._sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries within one call; the job queue retries beyond that
    base_seconds: float = 0.5
    max_delay_seconds: float = 10.0  # a longer retry_after is left to the job queue

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return hint
        exp = min(self.max_delay_seconds, self.base_seconds * 2 ** (attempt - 1))
        return exp * random.uniform(0.5, 1.5)


def with_retries(
    platform: str,
    what: str,
    policy: RetryPolicy,
    call: Callable[[], T],
    *,
    sleep=time.sleep,
    write: bool = False,
) -> T:
    """Run ``call``; on ``TransientError`` wait (the platform's hint or jittered backoff) and try
    again, up to ``policy.attempts``. One log line per retry, without tokens.

    ``write=True`` is for a call that changes something on the platform and has no idempotency
    key (a Telegram or OK message): it is retried only on an ``unprocessed`` error; an ambiguous
    one (a timeout or a dropped connection after sending, a 5xx) is raised at once, so that the
    caller can tell staff instead of maybe sending the message twice."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except TransientError as exc:
            if write and not exc.unprocessed:
                raise
            delay = policy.delay(attempt, exc.retry_after)
            if attempt >= policy.attempts or delay > policy.max_delay_seconds:
                raise
            log.warning(
                "%s %s failed, retrying in %.2fs: %s",
                platform,
                what,
                delay,
                exc.detail,
                extra={"platform": platform, "attempt": attempt},
            )
            sleep(delay)


# Failures before any byte of the request left: the platform cannot have acted on it.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(platform: str, exc: httpx.HTTPError) -> TransientError:
    # str(exc) of an httpx error can carry the URL, and Telegram and OK put the token in it.
    return TransientError(
        platform,
        f"network error: {type(exc).__name__}",
        unprocessed=isinstance(exc, NOT_SENT),
    )


def split_text(text: str, limit: int) -> list[str]:
    """Split a long reply into messages at a line or word boundary where there is one."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit), rest.rfind(" ", 0, limit))
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [p for p in parts if p] or [""]


_TOKEN_IN_URL = [
    (re.compile(r"/bot\d+:[A-Za-z0-9_-]+"), "/bot***"),
    (re.compile(r"/file/bot[^/\s]+"), "/file/bot***"),
    (re.compile(r"(access_token=)[^&\s\"']+"), r"\1***"),
]


def redact_url(text: str) -> str:
    for pattern, repl in _TOKEN_IN_URL:
        text = pattern.sub(repl, text)
    return text


class _RedactTokens(logging.Filter):
    """httpx logs every request URL at INFO; Telegram's URLs contain the bot token and OK's the
    access token. Mask them whatever the log level or formatter is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args
            )
        record.msg = redact_url(str(record.msg))
        return True


_redactor = _RedactTokens()
for _name in ("httpx", "httpcore"):
    if _redactor not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_redactor)
