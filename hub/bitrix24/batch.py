"""``batch``: up to 50 sub-commands in one HTTP request, with ``$result[key][…]`` references.

A batch counts as one request for the portal's leaky bucket, which is what makes ≤ 0.1 requests
per appeal possible. The response is HTTP 200 even when every command failed; per-command errors
sit in ``result_error`` and empty sections come back as ``[]`` instead of ``{}`` (a PHP quirk),
so both are normalised here (docs: settings/how-to-call-rest-api/batch.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.bitrix24 import phpquery
from hub.bitrix24.errors import Bitrix24Error, error_from_body

MAX_COMMANDS = 50


@dataclass(frozen=True)
class Ref:
    """A reference to an earlier command's result, rendered as ``$result[key][a][0]``."""

    key: str
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        return f"$result[{self.key}]" + "".join(f"[{p}]" for p in self.path)


class BatchFull(ValueError):
    pass


@dataclass
class Batch:
    """Commands in order; keys are the caller's names for them."""

    commands: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, key: str, method: str, params: Mapping[str, Any] | None = None) -> str:
        if key in self.commands:
            raise ValueError(f"duplicate batch key {key!r}")
        if len(self.commands) >= MAX_COMMANDS:
            raise BatchFull(f"a batch holds at most {MAX_COMMANDS} commands")
        self.commands[key] = (method, dict(params or {}))
        return key

    def __len__(self) -> int:
        return len(self.commands)

    def methods(self) -> dict[str, str]:
        return {k: m for k, (m, _) in self.commands.items()}

    def cmd(self) -> dict[str, str]:
        """The ``cmd`` parameter: ``{key: "method?query"}``, each query URL-encoded once."""
        out = {}
        for key, (method, params) in self.commands.items():
            query = phpquery.encode(_stringify_refs(params))
            out[key] = f"{method}?{query}" if query else method
        return out


def _stringify_refs(value: Any) -> Any:
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _stringify_refs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stringify_refs(v) for v in value]
    return value


def _section(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class BatchResult:
    results: dict[str, Any]
    errors: dict[str, Bitrix24Error]
    totals: dict[str, int]
    nexts: dict[str, int]
    times: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.results.get(key)

    @classmethod
    def parse(cls, result: Any, methods: Mapping[str, str]) -> BatchResult:
        result = _section(result)
        errors = {
            key: error_from_body(methods.get(key, key), None, body)
            for key, body in _section(result.get("result_error")).items()
        }
        return cls(
            results=_section(result.get("result")),
            errors=errors,
            totals={k: int(v) for k, v in _section(result.get("result_total")).items()},
            nexts={k: int(v) for k, v in _section(result.get("result_next")).items()},
            times=_section(result.get("result_time")),
        )
