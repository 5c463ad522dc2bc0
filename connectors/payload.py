"""Typed access to platform JSON, failing with the field's path instead of a bare ``KeyError``.

``Obj(payload).obj("object").req_int("from_id")`` either returns an ``int`` or raises
``PayloadError("object.from_id: expected an integer, got str '12'")``. The error reaches the dead
letter of the parse job, so the message has to say exactly what was wrong and where (Zulip's
``.tame(check_int)`` habit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class PayloadError(ValueError):
    """A platform payload lacks a field or has one of the wrong type."""


def _describe(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown[:40]}"


class Obj:
    """A JSON object with a path, read through typed getters."""

    __slots__ = ("data", "path")

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    @classmethod
    def from_json(cls, body: bytes) -> Obj:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise PayloadError("body is not valid JSON: nested too deeply") from None
        if not isinstance(value, dict):
            raise PayloadError(f"body must be a JSON object, got {type(value).__name__}")
        return cls(value)

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def _required(self, key: str) -> Any:
        if key not in self.data or self.data[key] is None:
            raise PayloadError(f"{self._at(key)}: missing")
        return self.data[key]

    def _int(self, key: str, value: Any) -> int:
        # VK and OK send ids both as numbers and as numeric strings; bools are never ids.
        if isinstance(value, bool):
            raise PayloadError(f"{self._at(key)}: expected an integer, got {_describe(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise PayloadError(f"{self._at(key)}: expected an integer, got {_describe(value)}")

    def req_int(self, key: str) -> int:
        return self._int(key, self._required(key))

    def opt_int(self, key: str) -> int | None:
        value = self.data.get(key)
        return None if value is None else self._int(key, value)

    def req_str(self, key: str) -> str:
        value = self._required(key)
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise PayloadError(f"{self._at(key)}: expected a string, got {_describe(value)}")

    def opt_str(self, key: str) -> str | None:
        return self.req_str(key) if self.has(key) else None

    def text(self, key: str) -> str:
        """A free-text field: missing or null reads as the empty string."""
        return self.opt_str(key) or ""

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if isinstance(value, bool | int):
            return bool(value)
        raise PayloadError(f"{self._at(key)}: expected a boolean, got {_describe(value)}")

    def obj(self, key: str) -> Obj:
        value = self._required(key)
        if not isinstance(value, Mapping):
            raise PayloadError(f"{self._at(key)}: expected an object, got {_describe(value)}")
        return Obj(value, self._at(key))

    def opt_obj(self, key: str) -> Obj | None:
        return self.obj(key) if self.has(key) else None

    def objs(self, key: str) -> list[Obj]:
        """A list of objects; missing or null reads as an empty list."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(f"{self._at(key)}: expected a list, got {_describe(value)}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise PayloadError(
                    f"{self._at(key)}[{i}]: expected an object, got {_describe(item)}"
                )
            out.append(Obj(item, f"{self._at(key)}[{i}]"))
        return out

    def ints(self, key: str) -> list[int]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(f"{self._at(key)}: expected a list, got {_describe(value)}")
        return [self._int(f"{key}[{i}]", v) for i, v in enumerate(value)]
