"""Every route of the real app, walked by every role and by nobody.

Routes are enumerated from ``app.routes``, so a route added tomorrow is walked tomorrow. A route
guarded by ``hub.ui.security.require(permission)`` must refuse anonymous callers (401 or a redirect
to the login form), answer 403 to a role without the permission, and let a role with it through
(anything but 401/403). A route with no such guard must be on ``PUBLIC`` with the reason it may be
called without a session, or the test fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from hub.ui.security import PERMISSIONS
from tests.conftest import LiveServer
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import ROLES, login, serve

# Who may do what, written out by hand from the roles' descriptions and NOT derived from
# PERMISSIONS: the walk below checks the running app against this table, so a permission widened
# or narrowed by mistake in hub/ui/security.py fails here. Admin: everything. Editor: the rule
# directory (and putting an author on the blacklist, which edits it). Reviewer: reads appeals,
# their traces, the rules and the audit log. Operator: appeals, the queue and dead letters, the
# channels, the sandbox's replies. Everyone: the dashboard, their language, logging out.
ADMIN, EDITOR, REVIEWER, OPERATOR = "admin", "editor", "reviewer", "operator"
EVERYONE = frozenset({ADMIN, EDITOR, REVIEWER, OPERATOR})
ACCESS: list[tuple[str, str, frozenset[str]]] = [
    ("GET", r"^/ui/$|^/ui/dashboard(/overdue)?$|^/api/reaction(\.csv)?$", EVERYONE),
    ("POST", r"^/ui/language$|^/ui/logout$", EVERYONE),
    (
        "GET",
        r"^/ui/appeals(/\{appeal_id\})?$|^/api/appeals(/\{appeal_id\})?$",
        frozenset({ADMIN, REVIEWER, OPERATOR}),
    ),
    ("POST", r"^/ui/appeals/\{appeal_id\}/reroute$", frozenset({ADMIN, OPERATOR})),
    ("POST", r"^/ui/appeals/\{appeal_id\}/blacklist$", frozenset({ADMIN, EDITOR})),
    ("GET", r"^/ui/rules(/.*)?$", frozenset({ADMIN, EDITOR, REVIEWER})),
    # Trying a typed text against the rules changes nothing: a read.
    ("POST", r"^/ui/rules/try$", frozenset({ADMIN, EDITOR, REVIEWER})),
    ("POST", r"^/ui/rules/(?!try$).+$", frozenset({ADMIN, EDITOR})),
    ("GET", r"^/ui/queue$|^/api/jobs$|^/api/rejected$", frozenset({ADMIN, OPERATOR})),
    ("POST", r"^/ui/queue/retry$", frozenset({ADMIN, OPERATOR})),
    ("GET", r"^/ui/channels$", frozenset({ADMIN, OPERATOR})),
    ("POST", r"^/ui/channels/\{source_id\}/test$", frozenset({ADMIN, OPERATOR})),
    ("GET", r"^/ui/audit$", frozenset({ADMIN, REVIEWER})),
    ("GET", r"^/ui/users$", frozenset({ADMIN})),
    ("POST", r"^/ui/users(/\{user_id\})?$", frozenset({ADMIN})),
    ("GET", r"^/ui/sandbox(/.*)?$", frozenset({ADMIN, REVIEWER, OPERATOR})),
    ("POST", r"^/ui/sandbox/.+/reply$", frozenset({ADMIN, OPERATOR})),
]


def allowed_roles(method: str, path: str) -> frozenset[str] | None:
    """The roles the table lets through; None when no row (or more than one) covers the route."""
    rows = [roles for m, pattern, roles in ACCESS if m == method and re.search(pattern, path)]
    return rows[0] if len(rows) == 1 else None


# Reachable without a session, each for a reason. Matched against the route's path template.
PUBLIC: dict[str, str] = {
    r"^/hooks/": "platform webhooks: each connector authenticates the platform (signature/secret)",
    r"^/telephony/": "PBX uploads (the source's token, as webhooks) and recording links signed "
    "with an expiry for Bitrix24 to download",
    r"^/healthz$|^/readyz$": "probes for the orchestrator and the load balancer",
    r"^/metrics$": "Prometheus scrape; expose only on the internal network",
    r"^/ui/login$": "the login form itself",
    r"^/ui/sso/": "sign-in from the Bitrix24 menu item: authenticated by the one-time ticket",
    r"^/$|^/ui$": "redirects to the UI (then to the login form)",
    r"^/static": "CSS and JS",
    r"^/files/": "capability links: the path carries the file's SHA-256 (unguessable) or a "
    "signed expiring token; handed to Bitrix24, where staff have no ClientHub session",
    r"^/bitrix24/": "Bitrix24 calls and iframes: authenticated by the application token, the "
    "portal's signed placement request or our own encrypted form token",
    r"^/sandbox": "the built-in sandbox portal (only when no real portal is configured)",
    r"^/docs|^/redoc|^/openapi.json": "the API description",
}


def _permission(route: APIRoute) -> str | None:
    """The permission of the route's ``require(...)`` dependency, found in its closure."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        call = dep.call
        if call is not None and "require.<locals>" in getattr(call, "__qualname__", ""):
            for cell in call.__closure__ or ():
                if isinstance(cell.cell_contents, str) and cell.cell_contents in PERMISSIONS:
                    return cell.cell_contents
        stack.extend(dep.dependencies)
    return None


def _fill(path: str) -> str:
    """Path parameters get plausible values: numbers for ids, a word for the rest."""
    return re.sub(
        r"\{([^}:]+)(?::[^}]+)?\}",
        lambda m: "1" if m.group(1).endswith("id") or m.group(1) == "n" else "x",
        path,
    )


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Flattened, through routers that newer FastAPI keeps as lazy ``_IncludedRouter`` nodes."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(original.routes, prefix + str(getattr(context, "prefix", "") or ""))
        else:
            yield prefix, route


def walk(app: FastAPI) -> Iterator[tuple[str, str, str | None]]:
    for prefix, route in _routes(app.routes):
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                yield method, prefix + route.path, _permission(route)
        elif isinstance(route, Route | Mount):
            yield "GET", prefix + route.path, None


def _public(path: str) -> bool:
    return any(re.search(p, path) for p in PUBLIC)


@pytest.fixture
def server(ui_sqlite_engine: Any) -> Iterator[LiveServer]:
    with serve(ui_sqlite_engine) as s:
        yield s


def _call(client: httpx.Client, method: str, path: str, csrf: str | None) -> httpx.Response:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method == "GET":
        return client.get(path, headers=headers)
    return client.request(method, path, headers=headers, data={"x": "1"})


def test_every_route_is_guarded_or_public_for_a_reason(server: LiveServer) -> None:
    app = server.server.config.app
    unguarded = [
        (m, p)
        for m, p, perm in walk(app)
        if perm is None and not _public(p)  # type: ignore[arg-type]
    ]
    assert not unguarded, f"routes with neither a role check nor a reason to be public: {unguarded}"


def test_every_guarded_route_is_in_the_access_table(server: LiveServer) -> None:
    app = server.server.config.app
    uncovered = [
        (m, p) for m, p, perm in walk(app) if perm is not None and allowed_roles(m, p) is None
    ]
    assert not uncovered, f"add these routes to ACCESS (exactly one row each): {uncovered}"


def test_every_role_gets_exactly_what_the_table_says(server: LiveServer) -> None:
    app = server.server.config.app
    guarded = [(m, p, perm) for m, p, perm in walk(app) if perm is not None]  # type: ignore[arg-type]
    assert len(guarded) > 20, "the walk found too few guarded routes"
    anonymous = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    wrong: list[str] = []
    for method, path, _perm in guarded:
        r = _call(anonymous, method, _fill(path), None)
        redirected = r.status_code == 303 and "/ui/login" in r.headers.get("location", "")
        if not (r.status_code == 401 or redirected):
            wrong.append(f"anonymous {method} {path} -> {r.status_code}")
    for role in ROLES:
        client = login(server, role)
        csrf = client.csrf  # type: ignore[attr-defined]
        for method, path, perm in guarded:
            if method == "POST" and path.endswith("/logout"):
                continue  # would end the session the walk is using
            r = _call(client, method, _fill(path), csrf)
            allowed = role in (allowed_roles(method, path) or ())
            if allowed and r.status_code in (401, 403):
                wrong.append(f"{role} {method} {path} ({perm}) refused: {r.status_code}")
            if not allowed and r.status_code != 403:
                wrong.append(f"{role} {method} {path} ({perm}) allowed: {r.status_code}")
            if r.status_code >= 500:
                wrong.append(f"{role} {method} {path} -> {r.status_code}")
    assert not wrong, "\n".join(wrong)


def test_unsafe_requests_without_the_csrf_token_are_refused(server: LiveServer) -> None:
    app = server.server.config.app
    client = login(server, "admin")
    posts = [
        (m, p)
        for m, p, perm in walk(app)
        if perm is not None and m != "GET"  # type: ignore[arg-type]
    ]
    assert posts
    for method, path in posts:
        r = _call(client, method, _fill(path), None)
        assert r.status_code == 403, (method, path, r.status_code)


def test_passwords_are_stored_as_argon2id(server: LiveServer) -> None:
    from sqlalchemy import select

    from hub.db import session_scope
    from hub.models import User

    admin = login(server, "admin")
    r = admin.post(
        "/ui/users",
        data={"csrf_token": admin.csrf, "login": "new-one", "role": "reviewer",  # type: ignore[attr-defined]
              "password": "a-long-password-1"},
    )  # fmt: skip
    assert r.status_code == 303 and "error=" not in r.headers["location"]
    with session_scope(server.server.config.app.state.engine, read_only=True) as s:  # type: ignore[attr-defined]
        hashes = dict(s.execute(select(User.login, User.password_hash)).all())
    assert {"admin", "new-one"} <= set(hashes)
    for login_, stored in hashes.items():
        assert stored.startswith("$argon2id$v=19$"), (login_, stored[:20])
        assert "a-long-password-1" not in stored
