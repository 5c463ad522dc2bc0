"""Login, sessions, CSRF and roles of the admin UI, over real HTTP on both backends."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import AuditEntry, Job, RuleSetVersion
from hub.storage import users as users_store
from hub.ui.security import PERMISSIONS
from tests.conftest import LiveServer
from tests.helpers import count
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import ROLES, add_appeal, login, password

PAGES = {
    "/ui/dashboard": "dashboard.read",
    "/ui/appeals": "appeals.read",
    "/ui/rules": "rules.read",
    "/ui/rules/draft/employees": "rules.read",
    "/ui/rules/draft/rules/edit?key=vacancy": "rules.read",
    "/ui/queue": "queue.read",
    "/ui/channels": "channels.read",
    "/ui/audit": "audit.read",
    "/ui/users": "users.manage",
}
ACTIONS = {
    "/ui/rules/draft": "rules.write",
    "/ui/rules/draft/publish": "rules.write",
    "/ui/rules/draft/employees/save": "rules.write",
    "/ui/rules/draft/test": "rules.write",
    "/ui/rules/draft/test/" + "t" * 32: "rules.write",  # the progress it polls
    "/ui/queue/retry": "queue.retry",
    "/ui/appeals/{appeal}/reroute": "appeals.reroute",
    "/ui/appeals/{appeal}/blacklist": "appeals.blacklist",
    "/ui/channels/1/test": "channels.test",
    "/ui/users": "users.manage",
}


def _login_form(client: httpx.Client) -> str:
    return client.get("/ui/login").text.split('name="csrf_token" value="')[1].split('"')[0]


class TestLogin:
    def test_pages_need_a_login(self, ui_server: LiveServer) -> None:
        with httpx.Client(base_url=ui_server.url) as client:
            r = client.get("/ui/appeals")
            assert r.status_code == 303
            assert r.headers["location"] == "/ui/login?next=/ui/appeals"
            htmx = client.get("/ui/appeals", headers={"HX-Request": "true"})
            assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/ui/login")
            assert client.post("/ui/queue/retry", data={}).status_code == 401

    def test_login_sets_a_hardened_cookie_and_audits(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        with httpx.Client(base_url=ui_server.url) as client:
            token = _login_form(client)
            r = client.post(
                "/ui/login",
                data={"login": "Editor", "password": password("editor"), "csrf_token": token,
                      "next": "/ui/rules"},
            )  # fmt: skip
            assert r.status_code == 303 and r.headers["location"] == "/ui/rules"
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            assert client.get("/ui/rules").status_code == 200
        assert count(ui_engine, AuditEntry, AuditEntry.action == "user.login") == 1

    def test_wrong_password_and_open_redirect(self, ui_server: LiveServer) -> None:
        with httpx.Client(base_url=ui_server.url) as client:
            token = _login_form(client)
            bad = client.post(
                "/ui/login", data={"login": "admin", "password": "nope", "csrf_token": token}
            )
            assert bad.status_code == 401 and "Неверный логин или пароль" in bad.text
            r = client.post(
                "/ui/login",
                data={"login": "admin", "password": password("admin"), "csrf_token": token,
                      "next": "https://evil.example/ui/"},
            )  # fmt: skip
            assert r.headers["location"] == "/ui/"

    def test_login_form_needs_its_csrf_cookie(self, ui_server: LiveServer) -> None:
        with httpx.Client(base_url=ui_server.url) as client:
            r = client.post(
                "/ui/login",
                data={"login": "admin", "password": password("admin"), "csrf_token": "forged"},
            )
            assert r.status_code == 400
            assert "clienthub_session" not in r.headers.get("set-cookie", "")

    def test_rate_limited_even_with_the_right_password(self, ui_server: LiveServer) -> None:
        with httpx.Client(base_url=ui_server.url) as client:
            token = _login_form(client)
            for _ in range(5):
                r = client.post(
                    "/ui/login", data={"login": "admin", "password": "x", "csrf_token": token}
                )
                assert r.status_code == 401
            r = client.post(
                "/ui/login",
                data={"login": "admin", "password": password("admin"), "csrf_token": token},
            )
            assert r.status_code == 429
            # Another login from the same address is not locked yet.
            ok = client.post(
                "/ui/login",
                data={"login": "editor", "password": password("editor"), "csrf_token": token},
            )
            assert ok.status_code == 303

    def test_logout_and_disable_end_the_session(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        client = login(ui_server, "reviewer")
        r = client.post("/ui/logout", headers={"X-CSRF-Token": client.csrf})  # type: ignore[attr-defined]
        assert r.status_code == 303
        assert client.get("/ui/appeals").status_code == 303
        client = login(ui_server, "operator")
        assert client.get("/ui/queue").status_code == 200
        with session_scope(ui_engine) as s:
            user = users_store.get_by_login(s, "operator")
            assert user is not None and user.id is not None
            users_store.update_user(s, user.id, enabled=False)
        assert client.get("/ui/queue").status_code == 303  # disabled: the session is dead


class TestCsrf:
    def test_unsafe_requests_need_the_session_token(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        client = login(ui_server, "admin")
        before = count(ui_engine, RuleSetVersion)
        assert client.post("/ui/rules/draft").status_code == 403
        assert client.post("/ui/rules/draft", data={"csrf_token": "wrong"}).status_code == 403
        assert count(ui_engine, RuleSetVersion) == before
        ok = client.post("/ui/rules/draft", data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert ok.status_code == 303
        assert count(ui_engine, RuleSetVersion) == before + 1


class TestRoles:
    """Roles are checked in Python, whatever the database: SQLite is enough."""

    @pytest.mark.parametrize("role", ROLES)
    def test_pages_by_role(self, role: str, ui_sqlite_server: LiveServer) -> None:
        client = login(ui_sqlite_server, role)
        for path, permission in PAGES.items():
            expected = 200 if role in PERMISSIONS[permission] else 403
            assert client.get(path).status_code == expected, (role, path)

    @pytest.mark.parametrize("role", ROLES)
    def test_forbidden_actions_change_nothing(
        self, role: str, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        appeal = add_appeal(ui_sqlite_engine)
        client = login(ui_sqlite_server, role)
        before = (count(ui_sqlite_engine, RuleSetVersion), count(ui_sqlite_engine, Job))
        for template, permission in ACTIONS.items():
            if role in PERMISSIONS[permission]:
                continue
            path = template.format(appeal=appeal)
            r = client.post(path, data={"csrf_token": client.csrf, "comment": "x"})  # type: ignore[attr-defined]
            assert r.status_code == 403, (role, path, r.status_code)
        assert (count(ui_sqlite_engine, RuleSetVersion), count(ui_sqlite_engine, Job)) == before
