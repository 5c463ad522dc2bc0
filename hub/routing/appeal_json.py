"""The JSON appeal that ``clienthub route`` reads, checked field by field with clear messages."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hub.routing.types import AppealInput, AuthorInput

REQUIRED = ("channel", "source", "kind", "text")
KNOWN = REQUIRED + ("author", "fields", "rating", "received_at")
AUTHOR_FIELDS = ("name", "phone", "email", "platform_id")


class AppealJsonError(ValueError):
    """The input is not an appeal; the message says what to fix."""


def parse_datetime(raw: str, what: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC, like every stored time."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise AppealJsonError(
            f"{what}: «{raw}» — не время ISO 8601 (2025-11-12T10:30:00+03:00)"
        ) from exc
    return value


def appeal_from_json(text: str) -> AppealInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppealJsonError(
            f"не JSON: {exc.msg} (строка {exc.lineno}, позиция {exc.colno})"
        ) from exc
    if not isinstance(data, dict):
        raise AppealJsonError("ожидался JSON-объект с полями обращения")
    missing = [name for name in REQUIRED if name not in data or data[name] is None]
    if missing:
        raise AppealJsonError("не хватает полей: " + ", ".join(missing))
    unknown = sorted(set(data) - set(KNOWN))
    if unknown:
        raise AppealJsonError("неизвестные поля: " + ", ".join(unknown))
    for name in REQUIRED:
        if not isinstance(data[name], str):
            raise AppealJsonError(f"поле {name} должно быть строкой")
    return AppealInput(
        channel=data["channel"],
        source=data["source"],
        kind=data["kind"],
        text=data["text"],
        author=_author(data.get("author")),
        fields=_fields(data.get("fields")),
        rating=_rating(data.get("rating")),
        received_at=(
            parse_datetime(data["received_at"], "received_at")
            if isinstance(data.get("received_at"), str)
            else _none_or_fail(data.get("received_at"), "received_at должно быть строкой ISO 8601")
        ),
    )


def _none_or_fail(value: Any, message: str) -> None:
    if value is not None:
        raise AppealJsonError(message)


def _author(raw: Any) -> AuthorInput:
    if raw is None:
        return AuthorInput()
    if not isinstance(raw, dict):
        raise AppealJsonError("author должно быть объектом {name, phone, email, platform_id}")
    unknown = sorted(set(raw) - set(AUTHOR_FIELDS))
    if unknown:
        raise AppealJsonError("неизвестные поля author: " + ", ".join(unknown))
    values: dict[str, str | None] = {}
    for name in AUTHOR_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str | int):
            raise AppealJsonError(f"author.{name} должно быть строкой")
        values[name] = None if value is None else str(value)
    return AuthorInput(**values)


def _fields(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AppealJsonError("fields должно быть объектом {имя: значение}")
    return dict(raw)


def _rating(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 5:
        raise AppealJsonError("rating должно быть целым от 1 до 5")
    return raw
