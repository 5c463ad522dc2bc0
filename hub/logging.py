"""Structured JSON logs; ``appeal_id`` and ``job_id`` ride along on every line of a unit of work."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from hub.timeutil import utcnow

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Bitrix24 webhook codes, OAuth tokens and secrets must never reach a log line (invariant 7).
_SECRET_PATTERNS = [
    (re.compile(r"(/rest/\d+/)[A-Za-z0-9]{6,}"), r"\1***"),
    (
        re.compile(
            r"((?:auth|access_token|refresh_token|secret|token|password|sign)=)[^&\s\"']+", re.I
        ),
        r"\1***",
    ),
]


def redact(text: str) -> str:
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": utcnow().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _ContextAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def bind_context(logger: logging.Logger, **context: Any) -> logging.LoggerAdapter[logging.Logger]:
    return _ContextAdapter(logger, context)
