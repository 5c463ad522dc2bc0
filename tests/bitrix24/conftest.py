"""Bitrix24 fixtures: the sandbox portal served over real HTTP, clients, appeals to deliver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub import queue
from hub.bitrix24.client import Bitrix24Client, RetryPolicy, WebhookAuth
from hub.bitrix24.jobs import KIND, make_handler
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.db import session_scope
from hub.models import Appeal, AppealState, DeliveryState
from hub.settings import Settings, get_settings
from hub.worker import Worker
from tests.conftest import LiveServer

SEED = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
FAST_RETRY = RetryPolicy(attempts=4, base_seconds=0.01, max_delay_seconds=0.05)


@dataclass
class Sandbox:
    url: str
    portal: Portal

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/rest/1/sandbox/"

    def faults(self, **faults: Any) -> dict[str, Any]:
        return httpx.post(f"{self.url}/_sandbox/faults", json=faults).json()

    def calls(self, *, top: bool = False, method: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"top": top}
        if method:
            params["method"] = method
        return httpx.get(f"{self.url}/_sandbox/calls", params=params).json()["calls"]

    def state(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_sandbox/state").json()

    def items(self, entity_type_id: int) -> list[dict[str, Any]]:
        return self.portal.store.items(entity_type_id)

    def comments(self) -> list[dict[str, Any]]:
        return self.portal.store.rows("SELECT data FROM comments ORDER BY id")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox portal seeded from routing_rules/sample, without a rate limit unless a test
    sets one (faults rate=...)."""
    app = create_sandbox_app(tmp_path / "sandbox.db", seed_dir=SEED, rate=None)
    with LiveServer(app) as server:
        yield Sandbox(server.url, app.state.portal)


def make_client(webhook_url: str, **kwargs: Any) -> Bitrix24Client:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("limiter", MemoryRateLimiter(1000, 1000))
    kwargs.setdefault("retry", FAST_RETRY)
    return Bitrix24Client(WebhookAuth(webhook_url), **kwargs)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[Bitrix24Client]:
    with make_client(sandbox.webhook_url) as c:
        yield c


def add_appeal(engine: Engine, **fields: Any) -> int:
    """A routed appeal with its delivery job queued, as the pipeline leaves it."""
    values: dict[str, Any] = {
        "channel": "vk",
        "source": "club1",
        "kind": "comment",
        "text": "Здравствуйте! Есть ли вакансии продавца в Казани?",
        "author_name": "Иван Петров",
        "author_phone": "8 (916) 123-45-67",
        "state": AppealState.routed.value,
        "region": "Казань",
        "topic": "вакансия",
        "bitrix_user_id": 12,
        "target": {"entity": "deal", "pipeline": 2, "stage": "C2:NEW"},
        "delivery_state": DeliveryState.pending.value,
    }
    values.update(fields)
    with session_scope(engine) as s:
        appeal = Appeal(**values)
        s.add(appeal)
        s.flush()
        assert appeal.id is not None
        if appeal.delivery_state == DeliveryState.pending:
            queue.enqueue(
                s, KIND, f"appeal:{appeal.id}", {"appeal_id": appeal.id}, appeal_id=appeal.id
            )
        return appeal.id


def get_appeal(engine: Engine, appeal_id: int) -> Appeal:
    with session_scope(engine, read_only=True) as s:
        appeal = s.get(Appeal, appeal_id)
        assert appeal is not None
        return appeal


def settings_for(**overrides: Any) -> Settings:
    base = get_settings().model_copy(
        update={"public_url": "https://hub.example", "job_poll_seconds": 0.01, **overrides}
    )
    return base


def worker_for(
    engine: Engine, client: Bitrix24Client | Callable[[Engine], Bitrix24Client], **overrides: Any
) -> Worker:
    settings = settings_for(**overrides)
    client_for = (
        client
        if callable(client) and not isinstance(client, Bitrix24Client)
        else (lambda _e: client)
    )
    handler = make_handler(client_for, settings)  # type: ignore[arg-type]
    return Worker(engine, settings=settings, handlers={KIND: handler})
