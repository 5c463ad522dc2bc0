"""Fixture loading for connector tests: one recorded payload per ``<event>__<variant>.json``."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from connectors import get_connector
from connectors.base import ParsedAppeal, RawEventView

FIXTURES = Path(__file__).parent / "fixtures"
RECEIVED = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)


def fixture_bytes(channel: str, name: str) -> bytes:
    return (FIXTURES / channel / f"{name}.json").read_bytes()


def fixture_names(channel: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / channel).glob("*.json"))


def raw_view(
    channel: str,
    name: str,
    *,
    source: str = "main",
    external_id: str = "evt-1",
    source_config: dict[str, Any] | None = None,
) -> RawEventView:
    return RawEventView(
        id=1,
        channel=channel,
        source=source,
        external_id=external_id,
        event_type=None,
        headers={},
        content_type="application/json",
        body=fixture_bytes(channel, name),
        received_at=RECEIVED,
        source_config=source_config or {},
    )


def parse_fixture(channel: str, name: str, **kwargs: Any) -> list[ParsedAppeal]:
    connector = get_connector(channel)
    assert connector is not None
    return connector.parse(raw_view(channel, name, **kwargs))


def fixtures_without_tests(channel: str, module: ModuleType) -> list[str]:
    tests = {n for n, _ in inspect.getmembers(module, inspect.isfunction)}
    return [n for n in fixture_names(channel) if f"test_{n}" not in tests]


def handlers_without_fixtures(channel: str, handlers: dict[str, Any]) -> list[str]:
    events = {n.split("__", 1)[0] for n in fixture_names(channel)}
    return sorted(set(handlers) - events)


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)
