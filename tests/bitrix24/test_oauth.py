"""The local application: install callback, tokens encrypted at rest, refresh against the
sandbox's OAuth server (before expiry, on expired_token mid-batch, one at a time)."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hub.bitrix24 import phpquery
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.http import router
from hub.bitrix24.oauth import InstallError, OAuthAuth, TokenManager, parse_install
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.db import session_scope
from hub.models import DeliveryState, PortalToken
from hub.settings import get_settings
from hub.storage import b24_tokens
from hub.timeutil import utcnow
from tests.bitrix24.conftest import FAST_RETRY, add_appeal, get_appeal, worker_for
from tests.conftest import LiveServer

SECRET = "app-secret"


def install(sandbox, engine, client_id: str = "local.abc.123") -> dict:
    payload = httpx.post(
        f"{sandbox.url}/_sandbox/apps", json={"client_id": client_id, "client_secret": SECRET}
    ).json()
    with session_scope(engine) as s:
        b24_tokens.save(s, parse_install(payload))
    return payload


def manager(sandbox, engine, payload: dict) -> TokenManager:
    return TokenManager(
        engine,
        domain=payload["auth"]["domain"],
        client_id="local.abc.123",
        client_secret=SECRET,
        oauth_url=f"{sandbox.url}/oauth/token/",
    )


class TestParseInstall:
    def test_auth_form(self):
        form = phpquery.parse(
            "event=ONAPPINSTALL&auth[access_token]=a1&auth[refresh_token]=r1&auth[expires_in]=3600"
            "&auth[domain]=shop.bitrix24.ru&auth[client_endpoint]=https://shop.bitrix24.ru/rest/"
            "&auth[member_id]=m1&auth[application_token]=t1"
        )
        tokens = parse_install(form)
        assert (tokens.domain, tokens.access_token, tokens.application_token) == (
            "shop.bitrix24.ru",
            "a1",
            "t1",
        )
        assert "a1" not in repr(tokens)

    def test_ui_form(self):
        tokens = parse_install({"AUTH_ID": "a", "REFRESH_ID": "r", "DOMAIN": "x.bitrix24.ru"})
        assert tokens.client_endpoint == "https://x.bitrix24.ru/rest/"

    @pytest.mark.parametrize(
        "form",
        [
            {"auth": {"access_token": "a", "domain": "x.bitrix24.ru"}},
            {
                "auth": {
                    "access_token": "a",
                    "refresh_token": "r",
                    "domain": "x.bitrix24.ru",
                    "client_endpoint": "https://evil.example/rest/",
                }
            },
        ],
    )
    def test_refused(self, form):
        with pytest.raises(InstallError):
            parse_install(form)


class TestTokenManager:
    def test_tokens_are_encrypted_at_rest(self, engine, sandbox):
        payload = install(sandbox, engine)
        with session_scope(engine, read_only=True) as s:
            row = s.execute(select(PortalToken)).scalar_one()
        assert payload["auth"]["access_token"] not in row.access_token_enc
        assert payload["auth"]["refresh_token"] not in row.refresh_token_enc

    def test_refreshed_shortly_before_expiry(self, engine, sandbox):
        payload = install(sandbox, engine)
        with session_scope(engine) as s:
            tokens = b24_tokens.load(s, payload["auth"]["domain"])
            b24_tokens.save(
                s,
                tokens.__class__(
                    **{**tokens.__dict__, "expires_at": utcnow() + timedelta(seconds=30)}
                ),
            )
        m = manager(sandbox, engine, payload)
        fresh = m.current()
        assert m.refreshes == 1
        assert fresh.access_token != payload["auth"]["access_token"]
        with Bitrix24Client(OAuthAuth(m), limiter=MemoryRateLimiter(1000, 1000)) as client:
            assert client.call("user.current").result["ID"] == "1"

    def test_one_refresh_at_a_time_across_workers(self, engine, sandbox):
        payload = install(sandbox, engine)
        stale = payload["auth"]["access_token"]
        workers = [manager(sandbox, engine, payload) for _ in range(4)]
        results: list[str] = []
        errors: list[Exception] = []

        def refresh(m: TokenManager) -> None:
            try:
                results.append(m.refresh(stale).access_token)
            except Exception as exc:  # a second grant with a spent refresh token would fail
                errors.append(exc)

        threads = [threading.Thread(target=refresh, args=(m,)) for m in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(m.refreshes for m in workers) == 1
        assert len(set(results)) == 1


def test_token_refresh_during_a_batch(engine, sandbox):
    payload = install(sandbox, engine)
    m = manager(sandbox, engine, payload)
    ids = [add_appeal(engine, author_phone=f"+7916700{i:04d}") for i in range(3)]
    sandbox.faults(expire_tokens=True)
    with Bitrix24Client(
        OAuthAuth(m), limiter=MemoryRateLimiter(1000, 1000), retry=FAST_RETRY
    ) as client:
        worker_for(engine, client).run_until_idle()
    assert m.refreshes == 1
    assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.delivered}
    top = sandbox.calls(top=True)
    assert [(c["method"], c["error"]) for c in top[:2]] == [
        ("batch", "expired_token"),
        ("batch", None),
    ]
    assert sandbox.state()["deals"] == 3


class TestInstallEndpoint:
    @pytest.fixture
    def hub(self, engine):
        app = FastAPI()
        app.state.settings = get_settings().model_copy(update={"b24_client_id": "local.abc.123"})
        app.state.engine = engine
        app.include_router(router)
        app.get("/healthz")(lambda: {"status": "ok"})
        with LiveServer(app) as server:
            yield server

    def test_install_then_a_forged_reinstall(self, engine, sandbox, hub):
        payload = httpx.post(
            f"{sandbox.url}/_sandbox/apps",
            json={"client_id": "local.abc.123", "client_secret": SECRET},
        ).json()
        body = phpquery.encode({"event": "ONAPPINSTALL", "auth": payload["auth"]})
        headers = {"content-type": "application/x-www-form-urlencoded"}
        ok = httpx.post(f"{hub.url}/bitrix24/install", content=body, headers=headers)
        assert ok.status_code == 200, ok.text
        with session_scope(engine, read_only=True) as s:
            stored = b24_tokens.load(s, payload["auth"]["domain"])
        assert stored.access_token == payload["auth"]["access_token"]

        forged = {**payload["auth"], "access_token": "x", "application_token": "not-it"}
        body = phpquery.encode({"event": "ONAPPINSTALL", "auth": forged})
        assert (
            httpx.post(f"{hub.url}/bitrix24/install", content=body, headers=headers).status_code
            == 403
        )

    def test_malformed_is_400(self, hub):
        answer = httpx.post(
            f"{hub.url}/bitrix24/install",
            content="auth[domain]=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 400
        assert "refresh_token" in answer.json()["detail"]
