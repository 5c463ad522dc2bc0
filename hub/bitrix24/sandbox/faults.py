"""What the sandbox can be told to do wrong (``POST /_sandbox/faults``), and its rate limit.

- ``outage``: every REST call gets a proxy's 503 HTML page; nothing runs.
- ``latency``: ``{"seconds", "count", "method"}``: answer late *after* running the method, so a
  client with a shorter timeout sees a timeout for a request that took effect.
- ``query_limit``: the next N REST calls get ``503 QUERY_LIMIT_EXCEEDED``.
- ``operation_limit``: ``{"method", "count", "reset_in"}``: ``429 OPERATION_TIME_LIMIT``.
- ``fail_commands``: ``[{"method", "every", "count", "error", "description"}]``: every k-th
  call of the method (inside a batch or not) fails with that error before running.
- ``expire_tokens``: all current OAuth access tokens expire now (a one-off action).
- ``rate``: ``{"burst", "per_second"}``: the leaky bucket; ``null`` switches it off.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LeakyBucket:
    """Per source IP, as the portal counts (docs: settings/performance/limits.md)."""

    burst: float
    per_second: float
    levels: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, source: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        level, at = self.levels.get(source, (0.0, now))
        level = max(0.0, level - (now - at) * self.per_second)
        if level + 1 > self.burst:
            self.levels[source] = (level, now)
            return False
        self.levels[source] = (level + 1, now)
        return True


@dataclass
class Faults:
    outage: bool = False
    latency: dict[str, Any] | None = None
    query_limit: int = 0
    operation_limit: dict[str, Any] | None = None
    fail_commands: list[dict[str, Any]] = field(default_factory=list)
    bucket: LeakyBucket | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: dict[int, int] = field(default_factory=dict)

    def update(self, body: dict[str, Any]) -> None:
        with self.lock:
            if "outage" in body:
                self.outage = bool(body["outage"])
            if "latency" in body:
                self.latency = dict(body["latency"]) if body["latency"] else None
            if "query_limit" in body:
                self.query_limit = int(body["query_limit"] or 0)
            if "operation_limit" in body:
                self.operation_limit = (
                    dict(body["operation_limit"]) if body["operation_limit"] else None
                )
            if "fail_commands" in body:
                self.fail_commands = [dict(r) for r in body["fail_commands"] or []]
                self._seen = {}
            if "rate" in body:
                rate = body["rate"]
                self.bucket = (
                    LeakyBucket(float(rate["burst"]), float(rate["per_second"])) if rate else None
                )

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "outage": self.outage,
                "latency": self.latency,
                "query_limit": self.query_limit,
                "operation_limit": self.operation_limit,
                "fail_commands": self.fail_commands,
                "rate": None
                if self.bucket is None
                else {"burst": self.bucket.burst, "per_second": self.bucket.per_second},
            }

    def rate_ok(self, source: str) -> bool:
        with self.lock:
            return self.bucket is None or self.bucket.take(source)

    def take_query_limit(self) -> bool:
        with self.lock:
            if self.query_limit > 0:
                self.query_limit -= 1
                return True
            return False

    def take_operation_limit(self, method: str) -> float | None:
        """Seconds until the method's budget resets, when it is exhausted."""
        with self.lock:
            rule = self.operation_limit
            if not rule or str(rule.get("method", "")).lower() != method:
                return None
            count = int(rule.get("count", 1))
            if count == 0:
                return None
            rule["count"] = count - 1
            return float(rule.get("reset_in", 1.0))

    def take_latency(self, method: str) -> float:
        with self.lock:
            rule = self.latency
            if not rule or (rule.get("method") and str(rule["method"]).lower() != method):
                return 0.0
            count = int(rule.get("count", -1))
            if count == 0:
                return 0.0
            if count > 0:
                rule["count"] = count - 1
            return float(rule.get("seconds", 0.0))

    def command_error(self, method: str) -> tuple[str, str] | None:
        with self.lock:
            for i, rule in enumerate(self.fail_commands):
                if str(rule.get("method", "")).lower() != method:
                    continue
                seen = self._seen.get(i, 0) + 1
                self._seen[i] = seen
                left = int(rule.get("count", -1))
                if left == 0 or seen % int(rule.get("every", 1)) != 0:
                    continue
                if left > 0:
                    rule["count"] = left - 1
                return (
                    str(rule.get("error", "INTERNAL_SERVER_ERROR")),
                    str(rule.get("description", "injected failure")),
                )
        return None
