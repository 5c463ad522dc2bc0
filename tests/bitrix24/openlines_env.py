"""ClientHub installed as a local application on a sandbox portal, both served over loopback
HTTP: the fixture the Open Lines and reply tests share."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.bitrix24 import app_setup
from hub.bitrix24.client import Bitrix24Client, WebhookAuth
from hub.bitrix24.jobs import KIND, make_handler
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.db import session_scope
from hub.jobs import job_handlers
from hub.models import Appeal, Job, Reply
from hub.settings import get_settings
from hub.worker import Worker
from tests.conftest import LiveServer

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"


class _Late:
    """An ASGI app set after the server's port is known (the public URL must name it)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class AppHub:
    url: str
    engine: Engine
    portal: Portal
    sandbox_url: str

    # -- ClientHub's side ------------------------------------------------------------------
    def drain(self) -> None:
        """Run every due job; deliveries use a webhook client on the sandbox (as in sandbox
        mode), Open Lines the application's OAuth tokens."""
        client = Bitrix24Client(
            WebhookAuth(f"{self.sandbox_url}/rest/1/sandbox/"),
            timeout=10.0,
            limiter=MemoryRateLimiter(1000, 1000),
        )
        settings = get_settings()
        handlers = {**job_handlers(), KIND: make_handler(lambda _e: client, settings)}
        with client:
            Worker(self.engine, settings=settings, handlers=handlers).run_until_idle()

    def appeals(self) -> list[Appeal]:
        with session_scope(self.engine, read_only=True) as s:
            return list(s.execute(select(Appeal).order_by(Appeal.id)).scalars())

    def replies(self) -> list[Reply]:
        with session_scope(self.engine, read_only=True) as s:
            return list(s.execute(select(Reply).order_by(Reply.id)).scalars())

    def jobs(self, kind: str | None = None) -> list[Job]:
        with session_scope(self.engine, read_only=True) as s:
            stmt = select(Job).order_by(Job.id)
            if kind:
                stmt = stmt.where(Job.kind == kind)
            return list(s.execute(stmt).scalars())

    # -- the portal's side -----------------------------------------------------------------
    def sb(self, path: str, **body: Any) -> Any:
        r = httpx.post(f"{self.sandbox_url}{path}", json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def sb_get(self, path: str) -> Any:
        return httpx.get(f"{self.sandbox_url}{path}", timeout=30).json()

    def install(self) -> None:
        """An admin adds the app: install callback, then the setup job binds everything."""
        assert app_setup.sandbox_self_install(get_settings(), self.engine, wait_seconds=5)
        self.drain()

    def open_settings(self, line: int = 1) -> str:
        options = {"CONNECTOR": "clienthub", "LINE": str(line), "ACTIVE_STATUS": False}
        opened = self.sb(
            "/_sandbox/placements/open", placement="SETTING_CONNECTOR", options=options
        )
        assert opened["status"] == 200, opened["html"][:500]
        return opened["html"]

    def activate_line(self, line: int = 1) -> str:
        """Contact Center → ClientHub → choose the line → «Подключить» (the page's own form)."""
        html = self.open_settings(line)
        token = re.search(r'name="token" value="([^"]+)"', html)
        assert token, html[:500]
        r = httpx.post(
            f"{self.url}/bitrix24/connector/activate",
            data={"token": token.group(1), "action": "activate"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.text

    def chats(self) -> list[dict[str, Any]]:
        return self.sb_get("/_sandbox/openlines/chats")["chats"]

    def chat_of(self, appeal: Appeal) -> dict[str, Any]:
        [chat] = [c for c in self.chats() if c["chat_id"] == appeal.b24_chat_id]
        return chat

    def operator_says(self, chat_id: int, text: str, **extra: Any) -> dict[str, Any]:
        return self.sb("/_sandbox/openlines/operator-message", chat_id=chat_id, text=text, **extra)

    def deals(self) -> list[dict[str, Any]]:
        return self.portal.store.items(2)


def publish_sample_rules(engine: Engine) -> None:
    from hub.routing import service as routing_service
    from hub.rules_io import read_dir
    from hub.storage import rulesets

    with session_scope(engine) as s:
        draft = rulesets.import_draft(session=s, files=read_dir(SAMPLE), created_by="test")
        rulesets.publish(session=s, published_by="test", version_id=draft.id)
    routing_service.invalidate_cache()


@pytest.fixture(scope="session")
def seeded_portal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox portal database seeded from the sample once; each test gets a copy."""
    path = tmp_path_factory.mktemp("portal") / "portal.db"
    Portal(path, seed_dir=SAMPLE).store.close()  # closing checkpoints the WAL into the file
    return path


@pytest.fixture
def app_hub(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_portal: Path
) -> Iterator[AppHub]:
    """ClientHub in sandbox mode with its public URL known, the sandbox portal beside it."""
    shutil.copyfile(seeded_portal, tmp_path / "portal.db")
    sandbox = create_sandbox_app(tmp_path / "portal.db", seed_dir=SAMPLE, rate=None)
    with LiveServer(sandbox) as portal:
        late = _Late()
        server = LiveServer(late)
        for name, value in {
            "CLIENTHUB_SANDBOX_ENABLED": "true",
            "CLIENTHUB_SANDBOX_URL": portal.url,
            "CLIENTHUB_PUBLIC_URL": server.url,
            "CLIENTHUB_B24_RATE_BURST": "1000",
            "CLIENTHUB_B24_RATE_PER_SECOND": "1000",
            "CLIENTHUB_FILES_DIR": str(tmp_path / "files"),
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        from hub.bootstrap import ensure_defaults
        from hub.http.app import create_app

        ensure_defaults(engine, get_settings())
        app = create_app(get_settings(), engine)
        mounted = {getattr(r, "path", "") for r in app.routes}
        from hub.bitrix24 import app_events, placement

        for path, router in (
            ("/bitrix24/events", app_events.router),
            ("/bitrix24/placement/deal", placement.router),
        ):
            if path not in mounted:  # until create_app mounts it
                app.include_router(router)
        late.app = app
        with server:
            yield AppHub(server.url, engine, sandbox.state.portal, portal.url)
    get_settings.cache_clear()
