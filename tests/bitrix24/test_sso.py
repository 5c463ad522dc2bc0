"""Single sign-on from the Bitrix24 portal, against the sandbox portal over loopback HTTP: the
left-menu item, the one-time ticket, the session it opens, and linking users to portal users."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from hub.bitrix24 import app_setup
from hub.cli_users import users_app
from hub.db import session_scope
from hub.models import AuditEntry, SsoTicket, User, UserSession
from hub.settings import get_settings
from hub.storage import b24_tokens
from hub.storage import users as users_store
from hub.timeutil import utcnow
from hub.ui.security import SESSION_COOKIE, hash_password, token_hash
from tests.bitrix24.openlines_env import AppHub, app_hub, seeded_portal  # noqa: F401
from tests.helpers import count
from tests.ui.helpers import login as ui_login
from tests.ui.helpers import password

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TICKET_LINK = re.compile(r'href="([^"]*/ui/sso/([A-Za-z0-9_-]+))" target="_blank"')
ANNA = 12  # a seeded portal user (Поздняков Алексей Олегович)


@pytest.fixture
def hub(app_hub: AppHub) -> AppHub:  # noqa: F811
    app_hub.install()
    return app_hub


def _user(
    hub: AppHub, login: str, role: str = "operator", *, bitrix: int | None, enabled: bool = True
) -> int:
    with session_scope(hub.engine) as s:
        user = users_store.create(
            s,
            login=login,
            role=role,
            name=login.title(),
            password_hash=hash_password(password(login)),
        )
        assert user.id is not None
        if bitrix is not None:
            users_store.link_bitrix_user(s, user.id, bitrix)
        user.enabled = enabled
        return user.id


def _open_menu(hub: AppHub, user_id: int) -> dict:
    """The portal user clicks «ClientHub» in the left menu."""
    return hub.sb(
        "/_sandbox/placements/open", placement="LEFT_MENU", options={"URI": "/crm/deal/"},
        user_id=user_id,
    )  # fmt: skip


def _ticket(hub: AppHub, user_id: int = ANNA) -> tuple[str, str]:
    opened = _open_menu(hub, user_id)
    assert opened["status"] == 200, opened["html"][:500]
    found = TICKET_LINK.search(opened["html"])
    assert found, opened["html"][:800]
    return found.group(1), found.group(2)


def _browser(hub: AppHub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, follow_redirects=False, timeout=30)


def _form(hub: AppHub, **overrides: str) -> dict[str, str]:
    with session_scope(hub.engine, read_only=True) as s:
        tokens = b24_tokens.load(s, None)
    assert tokens is not None
    return {
        "DOMAIN": tokens.domain,
        "APPLICATION_TOKEN": tokens.application_token or "",
        "AUTH_ID": tokens.access_token,
        "PLACEMENT": "LEFT_MENU",
        **overrides,
    }


@SQLITE_ONLY
def test_install_binds_the_left_menu_item_once(hub: AppHub) -> None:
    with hub.portal.store.lock:
        rows = [
            dict(r)
            for r in hub.portal.store.conn.execute(
                "SELECT * FROM ol_placements WHERE placement = 'LEFT_MENU'"
            )
        ]
    assert [r["handler"] for r in rows] == [app_setup.sso_url(get_settings())]
    assert '"TITLE": "ClientHub"' in rows[0]["data"] and "OPTIONS" not in rows[0]["data"]
    with app_setup.app_client(get_settings(), hub.engine) as client:
        listed = [p for p in client.call("placement.get").result if p["placement"] == "LEFT_MENU"]
        assert listed[0]["options"] == [] and listed[0]["title"] == "ClientHub"
        again = app_setup.setup(client, get_settings())  # a reinstall binds only what is missing
    assert again["placements_bound"] == 0


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_linked_user_opens_clienthub_once_with_their_role(hub: AppHub) -> None:
    _user(hub, "anna", "operator", bitrix=ANNA)
    opened = _open_menu(hub, ANNA)
    assert opened["status"] == 200
    assert "Поздняков" in opened["html"] and "<b>anna</b>" in opened["html"]
    assert 'rel="noopener noreferrer"' in opened["html"] and "Открыть ClientHub" in opened["html"]
    link, ticket = TICKET_LINK.search(opened["html"]).groups()  # type: ignore[union-attr]
    assert link == f"{hub.url}/ui/sso/{ticket}"
    with session_scope(hub.engine, read_only=True) as s:
        [row] = s.execute(select(SsoTicket)).scalars()
    assert row.token_hash == token_hash(ticket) and ticket not in row.token_hash  # hash only
    assert row.expires_at - utcnow() <= timedelta(minutes=2)

    with _browser(hub) as browser:
        r = browser.get(f"/ui/sso/{ticket}")
        assert (r.status_code, r.headers["location"]) == (303, "/ui/"), r.text[:300]
        assert SESSION_COOKIE in browser.cookies
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert browser.get("/ui/queue").status_code == 200  # the operator's pages
        assert browser.get("/ui/users").status_code == 403  # and nothing more
    with _browser(hub) as other:  # the same link, again (or from another browser)
        second = other.get(f"/ui/sso/{ticket}")
        assert second.status_code == 403 and "уже использована или истекла" in second.text
        assert SESSION_COOKIE not in other.cookies
    assert count(hub.engine, SsoTicket) == 0
    assert count(hub.engine, UserSession) == 1
    with session_scope(hub.engine, read_only=True) as s:
        audit = s.execute(select(AuditEntry).where(AuditEntry.action == "user.sso")).scalar_one()
    assert (audit.actor, audit.object_id, audit.details["bitrix24_user_id"]) == (
        "anna",
        "anna",
        ANNA,
    )


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_ticket_used_at_once_from_several_tabs_opens_one_session(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    _, ticket = _ticket(hub)

    def use(_: int) -> int:
        with _browser(hub) as browser:
            return browser.get(f"/ui/sso/{ticket}").status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(use, range(4)))
    assert codes == [303, 403, 403, 403]
    assert count(hub.engine, UserSession) == 1


@SQLITE_ONLY
def test_the_menu_page_may_be_framed_by_the_portal_and_is_not_cached(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    r = httpx.post(f"{hub.url}/bitrix24/sso", data=_form(hub, AUTH_ID=_auth_of(hub, ANNA)))
    assert r.status_code == 200 and TICKET_LINK.search(r.text)
    assert r.headers["cache-control"] == "no-store"
    assert hub.sandbox_url in r.headers["content-security-policy"].split("frame-ancestors")[1]
    assert "x-frame-options" not in r.headers


def _auth_of(hub: AppHub, user_id: int) -> str:
    """A fresh user token, as the portal puts into AUTH_ID for that user."""
    return hub.portal.issue_tokens(get_settings().sandbox_app_client_id, user_id)["access_token"]


@SQLITE_ONLY
def test_an_expired_ticket_fails(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    _, ticket = _ticket(hub)
    with session_scope(hub.engine) as s:
        s.execute(update(SsoTicket).values(expires_at=utcnow() - timedelta(seconds=1)))
    with _browser(hub) as browser:
        r = browser.get(f"/ui/sso/{ticket}")
    assert r.status_code == 403 and "уже использована или истекла" in r.text
    assert SESSION_COOKIE not in browser.cookies and count(hub.engine, UserSession) == 0


@SQLITE_ONLY
def test_a_ticket_is_neither_a_session_cookie_nor_an_api_token(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    _, ticket = _ticket(hub)
    api = httpx.get(f"{hub.url}/api/appeals", headers={"Authorization": f"Bearer {ticket}"})
    assert api.status_code == 401
    with _browser(hub) as browser:
        browser.cookies.set(SESSION_COOKIE, ticket)
        page = browser.get("/ui/dashboard")
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
    with _browser(hub) as browser:  # still good for what it is for, once
        assert browser.get(f"/ui/sso/{ticket}").status_code == 303
        session = browser.cookies[SESSION_COOKIE]
    assert session != ticket
    ok = httpx.get(f"{hub.url}/api/appeals", headers={"Authorization": f"Bearer {session}"})
    assert ok.status_code == 200


@SQLITE_ONLY
def test_the_portal_must_prove_the_app_and_the_user(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    wrong = httpx.post(f"{hub.url}/bitrix24/sso", data=_form(hub, APPLICATION_TOKEN="0" * 32))
    assert wrong.status_code == 403
    other = httpx.post(f"{hub.url}/bitrix24/sso", data=_form(hub, DOMAIN="evil.bitrix24.ru"))
    assert other.status_code == 403
    # The application token is the same for every portal user: without a live AUTH_ID of the
    # user, nobody is recognised.
    forged = httpx.post(f"{hub.url}/bitrix24/sso", data=_form(hub, AUTH_ID="forged"))
    assert forged.status_code == 403 and "Не удалось узнать" in forged.text
    assert count(hub.engine, SsoTicket) == 0


@SQLITE_ONLY
def test_an_unlinked_user_is_told_how_to_get_linked(hub: AppHub) -> None:
    _user(hub, "anna", bitrix=ANNA)
    opened = _open_menu(hub, 13)
    assert opened["status"] == 200
    html = opened["html"]
    assert "Фёдоров" in html and "<b>13</b>" in html and "hot-002@retail-sample.ru" in html
    assert "clienthub users link ЛОГИН --bitrix24-user 13" in html and "«Пользователи»" in html
    assert "/ui/sso/" not in html and count(hub.engine, SsoTicket) == 0


@SQLITE_ONLY
def test_a_disabled_user_gets_nothing_and_disabling_voids_a_ticket(hub: AppHub) -> None:
    _user(hub, "bob", bitrix=13, enabled=False)
    opened = _open_menu(hub, 13)
    assert opened["status"] == 403 and "отключён" in opened["html"]
    assert "/ui/sso/" not in opened["html"] and count(hub.engine, SsoTicket) == 0

    anna = _user(hub, "anna", bitrix=ANNA)
    _, ticket = _ticket(hub)
    with session_scope(hub.engine) as s:
        users_store.update_user(s, anna, enabled=False)
        users_store.close_all_sessions(s, anna)  # what disabling does (UI and CLI)
    with _browser(hub) as browser:
        assert browser.get(f"/ui/sso/{ticket}").status_code == 403


@SQLITE_ONLY
def test_relinking_voids_the_tickets_of_the_old_link(hub: AppHub) -> None:
    anna = _user(hub, "anna", bitrix=ANNA)
    _, ticket = _ticket(hub)
    with session_scope(hub.engine) as s:
        users_store.link_bitrix_user(s, anna, None)
    with _browser(hub) as browser:
        assert browser.get(f"/ui/sso/{ticket}").status_code == 403


@SQLITE_ONLY
def test_the_users_page_links_a_portal_user_once(hub: AppHub) -> None:
    _user(hub, "admin", "admin", bitrix=None)
    anna = _user(hub, "anna", bitrix=None)
    bob = _user(hub, "bob", bitrix=None)
    admin = ui_login(SimpleNamespace(url=hub.url), "admin")  # type: ignore[arg-type]
    csrf = {"X-CSRF-Token": admin.csrf}  # type: ignore[attr-defined]
    form = {"role": "operator", "enabled": "true", "bitrix_link": "true"}
    r = admin.post(f"/ui/users/{anna}", data={**form, "bitrix_user_id": str(ANNA)}, headers=csrf)
    assert r.status_code == 303 and "error" not in r.headers["location"]
    page = admin.get("/ui/users").text
    assert f'name="bitrix_user_id" form="user-{anna}" value="{ANNA}"' in page
    taken = admin.post(f"/ui/users/{bob}", data={**form, "bitrix_user_id": "12"}, headers=csrf)
    assert "error" in taken.headers["location"]
    bad = admin.post(f"/ui/users/{bob}", data={**form, "bitrix_user_id": "x1"}, headers=csrf)
    assert "error" in bad.headers["location"]
    no_csrf = admin.post(f"/ui/users/{bob}", data={**form, "bitrix_user_id": "14"})
    assert no_csrf.status_code == 403
    # A form without the field (a script) leaves the link alone; an empty field unlinks.
    script = {"role": "operator", "enabled": "true"}
    assert admin.post(f"/ui/users/{anna}", data=script, headers=csrf).status_code == 303
    assert _link_of(hub, "anna") == ANNA and _link_of(hub, "bob") is None
    admin.post(f"/ui/users/{anna}", data={**form, "bitrix_user_id": ""}, headers=csrf)
    assert _link_of(hub, "anna") is None
    with session_scope(hub.engine, read_only=True) as s:
        changes = s.execute(
            select(AuditEntry).where(AuditEntry.action == "user.change").order_by(AuditEntry.id)
        ).scalars()
        links = [e.details["after"].get("bitrix_user_id", "-") for e in changes]
    assert links == [ANNA, "-", None]
    admin.close()


def _link_of(hub: AppHub, login: str) -> int | None:
    with session_scope(hub.engine, read_only=True) as s:
        user = s.execute(select(User).where(User.login == login)).scalar_one()
        return user.bitrix_user_id


@SQLITE_ONLY
def test_cli_links_and_unlinks(engine) -> None:  # type: ignore[no-untyped-def]
    run = CliRunner().invoke
    with session_scope(engine) as s:
        for login in ("anna", "bob"):
            users_store.create(s, login=login, role="operator", password_hash="x")
    r = run(users_app, ["link", "Anna", "--bitrix24-user", "12"])
    assert r.exit_code == 0 and "anna linked to Bitrix24 user 12" in r.output, r.output
    taken = run(users_app, ["link", "bob", "--bitrix24-user", "12"])
    assert taken.exit_code == 2 and "linked to anna" in taken.output
    assert run(users_app, ["link", "bob"]).exit_code == 2  # neither an id nor --unlink
    assert run(users_app, ["link", "nobody", "--bitrix24-user", "5"]).exit_code == 2
    assert "bitrix24 user 12" in run(users_app, ["list"]).output
    assert run(users_app, ["link", "anna", "--unlink"]).exit_code == 0
    assert run(users_app, ["link", "bob", "--bitrix24-user", "12"]).exit_code == 0
    with session_scope(engine, read_only=True) as s:
        linked = {u.login: u.bitrix_user_id for u in users_store.list_all(s)}
        actions = [
            e.action for e in s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]
    assert linked == {"anna": None, "bob": 12}
    assert actions == ["user.link", "user.unlink", "user.link"]
