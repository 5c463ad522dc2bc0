"""Checks a site form's request passes before it is stored: an HMAC signature with a timestamp,
a per-IP rate limit, a honeypot and a minimum fill time.

All run inside ``verify`` (no database). A refusal is answered with its reason and recorded in
``rejected_requests`` by the webhook endpoint, so nothing a bot sends disappears silently.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import InboundRequest, Rejected

SIGNATURE_HEADER = "x-signature"
TIMESTAMP_HEADER = "x-timestamp"
DEFAULT_TOLERANCE = 300  # seconds either side of our clock
HONEYPOT_FIELD = "_hp"
ELAPSED_FIELD = "_elapsed_ms"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body``: the timestamp is signed too,
    so a captured request cannot be replayed later with a fresh timestamp (the Slack scheme)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_signature(
    request: InboundRequest,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Callable[[], float] = time.time,
) -> None:
    given = request.headers.get(SIGNATURE_HEADER, "")
    stamp = request.headers.get(TIMESTAMP_HEADER, "")
    if not given or not stamp:
        raise Rejected(401, "signed form: X-Signature and X-Timestamp headers are required")
    try:
        sent = float(stamp)
    except ValueError:
        raise Rejected(401, "signed form: X-Timestamp is not a Unix time in seconds") from None
    if abs(now() - sent) > tolerance:
        raise Rejected(401, f"signed form: X-Timestamp is more than {tolerance:.0f} s off")
    expected = signature(secret, stamp, request.body)
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise Rejected(401, "signed form: X-Signature does not match the body")


def check_honeypot(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    name = str(config.get("honeypot_field") or HONEYPOT_FIELD)
    value = next((v for k, v in values.items() if k.lower() == name.lower()), None)
    if value not in (None, "", []):
        raise Rejected(422, f"spam protection: the hidden field {name!r} was filled in")


def check_fill_time(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """``_elapsed_ms`` is set by the page's script at submit (milliseconds since the form was
    shown): a person needs seconds, a bot posts at once. Measured in the browser, so clock skew
    between the visitor and the server does not matter."""
    minimum = float(config.get("min_fill_seconds", 3))
    raw = values.get(ELAPSED_FIELD)
    if raw in (None, ""):
        if config.get("require_fill_time"):
            raise Rejected(422, f"spam protection: {ELAPSED_FIELD} is missing (no script ran)")
        return
    try:
        elapsed = float(str(raw)) / 1000
    except ValueError:
        raise Rejected(422, f"spam protection: {ELAPSED_FIELD} is not a number") from None
    if elapsed < minimum:
        raise Rejected(
            422,
            f"spam protection: sent {elapsed:.1f} s after the form opened (minimum {minimum:g})",
        )


class IpRateLimit:
    """A token bucket per (source, client address), kept in this process's memory.

    Several web processes each keep their own buckets, so the effective limit is per process;
    the least recently seen addresses are forgotten beyond ``max_keys``.
    """

    def __init__(
        self, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock
        self.max_keys = max_keys

    def allow(self, key: tuple[str, str], *, per_minute: float, burst: float) -> bool:
        rate = per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + (now - stamp) * rate)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return allowed


def check_rate(
    limiter: IpRateLimit, request: InboundRequest, source_key: str, config: Mapping[str, Any]
) -> None:
    # Off unless the source sets it: load tests and server-side relays post from one address.
    per_minute = float(config.get("rate_limit_per_minute", 0))
    if per_minute <= 0 or not request.remote_addr:
        return  # disabled, or no address to count by
    burst = float(config.get("rate_limit_burst", 5))
    if not limiter.allow((source_key, request.remote_addr), per_minute=per_minute, burst=burst):
        raise Rejected(429, f"too many submissions from {request.remote_addr}; try again later")
