"""Security headers (hub/http/security.py), cookie flags, the login rate limit, and templates that
a strict Content-Security-Policy can serve (no inline script, no inline event handler)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from hub.http.app import create_app
from hub.http.security import SecurityHeaders, install_security_headers, portal_origins
from hub.settings import get_settings
from tests.conftest import LiveServer
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import login

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


def _mounted(app: FastAPI) -> bool:
    return any(m.cls is SecurityHeaders for m in app.user_middleware)


def _app(engine: Any, **overrides: Any) -> FastAPI:
    from hub.bootstrap import ensure_defaults

    settings = get_settings().model_copy(update=overrides)
    ensure_defaults(engine, settings)
    app = create_app(settings, engine)
    if not _mounted(app):  # until create_app mounts it (see test_create_app_mounts_it)
        install_security_headers(app, settings)
    return app


@pytest.fixture
def server(ui_sqlite_engine: Any) -> Iterator[LiveServer]:
    with LiveServer(_app(ui_sqlite_engine)) as s:
        yield s


def test_create_app_mounts_it(ui_sqlite_engine: Any) -> None:
    app = create_app(get_settings(), ui_sqlite_engine)
    assert _mounted(app), "hub/http/app.py must call install_security_headers(app, settings)"


def test_pages_may_not_be_framed_or_run_inline_scripts(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/ui/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in r.headers  # plain HTTP on loopback


def test_every_response_carries_them_webhooks_and_errors_too(server: LiveServer) -> None:
    for r in (
        httpx.post(f"{server.url}/hooks/nope/x", content=b"{}"),
        httpx.get(f"{server.url}/healthz"),
        httpx.get(f"{server.url}/no/such/page"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_bitrix24_pages_may_be_framed_by_the_portal_only(ui_sqlite_engine: Any) -> None:
    app = _app(ui_sqlite_engine, b24_portal_domain="shop.bitrix24.ru")
    with LiveServer(app) as s:
        r = httpx.post(f"{s.url}/bitrix24/placement/deal", data={})
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.bitrix24.ru" in csp
    assert "script-src 'self' https://api.bitrix24.com" in csp
    assert "x-frame-options" not in r.headers


def test_portal_origins_come_from_the_configuration() -> None:
    base = get_settings()
    hook = base.model_copy(
        update={"b24_webhook_url": SecretStr("https://corp.bitrix24.kz/rest/1/abc/")}
    )
    assert portal_origins(hook) == ["https://corp.bitrix24.kz"]
    assert all(o.startswith("https://*.bitrix24.") for o in portal_origins(base))


def test_https_adds_hsts_and_secure_cookies(ui_sqlite_engine: Any) -> None:
    app = _app(ui_sqlite_engine, public_url="https://hub.example")
    with LiveServer(app) as s:
        r = httpx.get(f"{s.url}/ui/login")
        assert r.headers["strict-transport-security"].startswith("max-age=")
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_session_cookie_flags(server: LiveServer) -> None:
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    page = client.get("/ui/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/ui/login", data={"login": "admin", "password": "password-admin-1", "csrf_token": token}
    )
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("clienthub_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


def test_login_is_rate_limited_per_login(server: LiveServer) -> None:
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    statuses = []
    for _ in range(7):
        token = client.get("/ui/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post(
            "/ui/login", data={"login": "editor", "password": "wrong", "csrf_token": token}
        )
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    # Even the right password waits out the window now.
    token = client.get("/ui/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/ui/login", data={"login": "editor", "password": "password-editor-1", "csrf_token": token}
    )
    assert r.status_code == 429


def test_the_channels_page_never_shows_a_secret_in_full(server: LiveServer, ui_sqlite_engine):
    from hub.db import session_scope
    from hub.storage import sources as sources_store

    secret = "vk1.a.VERYSECRETTOKEN0123456789"
    with session_scope(ui_sqlite_engine) as s:
        sources_store.upsert(s, channel="vk", source="club1", secrets={"token": secret})
    page = login(server, "admin").get("/ui/channels")
    assert page.status_code == 200
    assert secret not in page.text and "VERYSECRET" not in page.text


INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.I | re.S)


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_templates_have_no_inline_script(template: Path) -> None:
    """The CSP allows scripts from files only; an inline one would silently not run."""
    text = template.read_text("utf-8")
    assert not INLINE_HANDLER.search(text), "inline event handler (onclick=…): use static JS"
    for attrs, body in SCRIPT.findall(text):
        if "src=" in attrs or "application/json" in attrs:
            continue  # a file, or data for a script (not executed)
        assert not body.strip(), "inline <script>: move it to web/static"
    assert "javascript:" not in text
