"""Helpers for the UI tests: the seeded users and directory, logging in, routed appeals."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Appeal
from hub.rules_io import read_dir
from hub.storage import rulesets
from hub.storage import users as users_store
from hub.ui.security import hash_password
from tests.conftest import LiveServer

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
ROLES = ("admin", "editor", "reviewer", "operator")
# A Wednesday, 12:00 in Moscow: every sample employee with office hours is on duty.
NOON = datetime(2025, 11, 12, 9, 0, tzinfo=UTC)


def password(role: str) -> str:
    return f"password-{role}-1"


def seed(engine: Engine) -> None:
    """The sample directory as published version 1 and a user per role (login = role)."""
    with session_scope(engine) as s:
        draft = rulesets.import_draft(
            session=s, files=read_dir(SAMPLE), created_by="system", note="sample"
        )
        rulesets.publish(session=s, published_by="system", version_id=draft.id)
        for role in ROLES:
            users_store.create(
                s,
                login=role,
                name=f"Тест {role}",
                role=role,
                password_hash=hash_password(password(role)),
            )


def serve(engine: Engine) -> LiveServer:
    from hub.bootstrap import ensure_defaults
    from hub.http.app import create_app
    from hub.settings import get_settings

    settings = get_settings()
    ensure_defaults(engine, settings)
    return LiveServer(create_app(settings, engine))


def login(server: LiveServer, role: str) -> httpx.Client:
    """A client with a session of ``role``; ``client.csrf`` is the session's token."""
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    page = client.get("/ui/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/ui/login", data={"login": role, "password": password(role), "csrf_token": token}
    )
    assert r.status_code == 303, r.text
    dashboard = client.get("/ui/dashboard")
    client.csrf = dashboard.text.split('"X-CSRF-Token": "')[1].split('"')[0]  # type: ignore[attr-defined]
    return client


def add_appeal(engine: Engine, **values: object) -> int:
    """An appeal routed by the published rules, as the pipeline would (delivery not configured)."""
    from hub.pipeline import route_appeal

    defaults: dict[str, object] = {
        "channel": "vk", "source": "club210000101", "kind": "message", "received_at": NOON,
        "author_name": "Иван Петров", "text": "Хочу устроиться продавцом, есть вакансии?",
    }  # fmt: skip
    with session_scope(engine) as s:
        appeal = Appeal(**{**defaults, **values})
        s.add(appeal)
        s.flush()
        route_appeal(s, appeal)
        assert appeal.id is not None
        return appeal.id


def log_in(page: Any, server: LiveServer, role: str) -> None:
    """The browser ``page`` signed in as ``role`` (login = role), on the dashboard."""
    page.goto(f"{server.url}/ui/login")
    page.fill("input[name=login]", role)
    page.fill("input[name=password]", password(role))
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/dashboard")


def htmx_settled(page: Any) -> None:
    """Wait until htmx has finished swapping and processed what it inserted: content is
    attached first and wired (its ``hx-*`` triggers) only at settle, 20 ms later, so an event
    fired on a just-inserted element in between is lost."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-added, .htmx-settling, .htmx-swapping, "
        ".htmx-request')"
    )
