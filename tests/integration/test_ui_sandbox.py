"""The admin UI's sandbox page over real HTTP: ClientHub in sandbox mode serving the sandbox
portal at /sandbox in the same process, installed on it as a local application. What the page
lists was put into the portal through its REST API (and by ClientHub's own delivery); a reply
written on the page must come back to ClientHub as the portal's event, never as a direct write."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub.bitrix24.factory import SANDBOX_MOUNT
from hub.db import session_scope
from hub.models import AuditEntry
from hub.settings import get_settings
from hub.storage import sources as sources_store
from tests.bitrix24.openlines_env import AppHub
from tests.conftest import LiveServer
from tests.connectors.helpers import fixture_bytes
from tests.helpers import count
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import login, serve

TG_SECRET = "ui-sandbox-webhook-secret"
# What depends on the database (appeals, replies, jobs) runs on both backends; the rest on one.
SQLITE_ONLY = pytest.mark.parametrize("ui_db_url", ["sqlite"], indirect=True)


class _Late:
    """An ASGI app set after the server's port is known (the public URL must name it)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def hub(ui_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppHub]:
    """`clienthub run` in sandbox mode: the portal mounted at /sandbox of the same server,
    ClientHub installed on it, the Open Lines connector switched on for line 1."""
    from hub.http.app import create_app

    late = _Late()
    server = LiveServer(late)
    for name, value in {
        "CLIENTHUB_SANDBOX_ENABLED": "true",
        "CLIENTHUB_PUBLIC_URL": server.url,
        "CLIENTHUB_SANDBOX_URL": f"{server.url}{SANDBOX_MOUNT}",
        "CLIENTHUB_SANDBOX_RATE_BURST": "1000",
        "CLIENTHUB_SANDBOX_RATE_PER_SECOND": "1000",
        "CLIENTHUB_FILES_DIR": str(tmp_path / "files"),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    app = create_app(get_settings(), ui_engine)
    [mount] = [r for r in app.routes if getattr(r, "path", "") == SANDBOX_MOUNT]
    late.app = app
    with server:
        sandbox = AppHub(server.url, ui_engine, mount.app.state.portal, f"{server.url}/sandbox")
        sandbox.install()
        sandbox.activate_line(1)
        yield sandbox
    get_settings.cache_clear()


def _login(hub: AppHub, role: str) -> httpx.Client:
    return login(hub, role)  # type: ignore[arg-type] - only the URL is used


def _telegram_customer_writes(hub: AppHub) -> None:
    """A Telegram message through ClientHub's webhook: delivery makes the contact, the deal and
    the Open Lines chat in the sandbox."""
    with session_scope(hub.engine) as s:
        sources_store.upsert(
            s, channel="telegram", source="bot", config={},
            secrets={"token": "123:ui-sandbox", "webhook_secret": TG_SECRET},
        )  # fmt: skip
    r = httpx.post(
        f"{hub.url}/hooks/telegram/bot",
        content=fixture_bytes("telegram", "message__private_text"),
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
    )
    assert r.status_code == 200, r.text
    hub.drain()


def _rest(hub: AppHub, method: str, **params: Any) -> Any:
    """The portal's REST API as an integration calls it (webhook), or as an app (``auth=``)."""
    r = httpx.post(f"{hub.sandbox_url}/rest/1/sandbox/{method}", json=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def _app_rest(hub: AppHub, method: str, **params: Any) -> Any:
    token = hub.portal.issue_tokens(get_settings().sandbox_app_client_id)["access_token"]
    r = httpx.post(f"{hub.sandbox_url}/rest/{method}", json={**params, "auth": token}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def _portal_content(hub: AppHub) -> dict[str, Any]:
    """A contact, a deal with a ClientHub comment, and a finished call with its recording."""
    contact = _rest(
        hub, "crm.item.add", entityTypeId=3,
        fields={"name": "Мария", "lastName": "Сандбоксова",
                "fm": [{"typeId": "PHONE", "valueType": "MOBILE", "value": "+79990001122"},
                       {"typeId": "EMAIL", "valueType": "WORK", "value": "maria@example.ru"}]},
    )["item"]  # fmt: skip
    deal = _rest(
        hub, "crm.item.add", entityTypeId=2,
        fields={"title": "Сайт: заявка — проверка песочницы", "contactId": contact["id"],
                "assignedById": 1, "originatorId": "clienthub", "originId": "424242"},
    )["item"]  # fmt: skip
    _rest(
        hub, "crm.timeline.comment.add",
        fields={"ENTITY_TYPE": "deal", "ENTITY_ID": deal["id"],
                "COMMENT": "Хочу вернуть товар\n\n[URL=http://x/appeals/77]ClientHub #77[/URL]"},
    )  # fmt: skip
    call = _app_rest(
        hub, "telephony.externalcall.register", USER_ID=1, PHONE_NUMBER="+79990001122", TYPE=2,
        EXTERNAL_CALL_ID="clienthub-9001-call-key", CRM_CREATE=0,
    )  # fmt: skip
    _app_rest(hub, "telephony.externalcall.finish", CALL_ID=call["CALL_ID"], USER_ID=1, DURATION=42)
    audio = base64.b64encode(b"ID3 fake recording").decode()
    _app_rest(
        hub, "telephony.externalcall.attachRecord", CALL_ID=call["CALL_ID"],
        FILENAME="call-9001.mp3", FILE_CONTENT=audio,
    )  # fmt: skip
    return {"contact": contact, "deal": deal, "call": call}


def test_the_page_shows_deals_contacts_chats_and_calls(hub: AppHub) -> None:
    _telegram_customer_writes(hub)
    made = _portal_content(hub)
    [appeal] = hub.appeals()
    assert appeal.b24_chat_id and appeal.crm_entity_id
    client = _login(hub, "reviewer")

    deals = client.get("/ui/sandbox")
    assert deals.status_code == 200
    assert 'href="/ui/sandbox"' in deals.text  # the nav entry, in sandbox mode
    table = deals.text.split('id="sandbox-deals"')[1].split("</table>")[0]
    assert "Сайт: заявка — проверка песочницы" in table and "Мария Сандбоксова" in table
    assert 'href="/ui/appeals/424242"' in table and 'href="/ui/appeals/77"' in table
    assert f'href="/ui/appeals/{appeal.id}"' in table  # ClientHub's own deal, by its marker
    assert "Администратор" in table  # the responsible user's name
    assert "Не обработан" not in table  # a deal's stage, not the lead status of the same id

    card = client.get(f"/ui/sandbox/deals/{appeal.crm_entity_id}").text
    timeline = card.split('id="timeline"')[1]
    assert "Добрый день! Заказ 4512 не пришёл" in timeline
    assert f"ClientHub #{appeal.id}" in timeline
    assert f'href="/ui/sandbox/chats/{appeal.b24_chat_id}"' in card

    contacts = client.get("/ui/sandbox?tab=contacts").text.split('id="sandbox-contacts"')[1]
    assert "+79990001122" in contacts and "maria@example.ru" in contacts
    assert "Test Firstname" in contacts  # the Telegram customer ClientHub delivered

    chats = client.get("/ui/sandbox?tab=chats").text.split('id="sandbox-chats"')[1]
    assert f'href="/ui/sandbox/chats/{appeal.b24_chat_id}"' in chats
    chat = client.get(f"/ui/sandbox/chats/{appeal.b24_chat_id}").text
    assert "Заказ 4512" in chat.split('id="messages"')[1]
    assert f'href="/ui/appeals/{appeal.id}"' in chat.split('id="chat-appeals"')[1]

    calls = client.get("/ui/sandbox?tab=calls").text.split('id="sandbox-calls"')[1]
    assert "+79990001122" in calls and "call-9001.mp3" in calls
    assert 'href="/ui/appeals/9001"' in calls
    assert client.get("/ui/sandbox/deals/999999").status_code == 404
    assert made["deal"]["id"] != appeal.crm_entity_id


def test_a_chat_reply_goes_through_the_portal_event(hub: AppHub) -> None:
    _telegram_customer_writes(hub)
    [appeal] = hub.appeals()
    client = _login(hub, "operator")
    page = client.get(f"/ui/sandbox/chats/{appeal.b24_chat_id}")
    assert 'action="/ui/sandbox/chats/' in page.text
    r = client.post(
        f"/ui/sandbox/chats/{appeal.b24_chat_id}/reply",
        data={"csrf_token": client.csrf, "text": "Заказ уже едет, простите!", "user_id": "1"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=sent"), r.text
    # The sandbox stored the operator's message and fired OnImConnectorMessageAdd; ClientHub's
    # application handler made the reply and queued its relay to Telegram.
    [out] = [m for m in hub.chat_of(appeal)["messages"] if m["direction"] == "out"]
    assert out["text"].endswith("Заказ уже едет, простите!")
    [reply] = hub.replies()
    assert (reply.origin, reply.appeal_id) == ("openline", appeal.id)
    assert (reply.b24_chat_id, reply.b24_message_id) == (appeal.b24_chat_id, out["message_id"])
    [job] = hub.jobs("reply.send")
    assert job.state == "queued"
    assert count(hub.engine, AuditEntry, AuditEntry.action == "sandbox.chat_reply") == 1
    shown = client.get(r.headers["location"]).text
    assert "Заказ уже едет" in shown.split('id="messages"')[1]


def test_a_deal_card_reply_goes_through_the_placement(hub: AppHub) -> None:
    _telegram_customer_writes(hub)
    [appeal] = hub.appeals()
    client = _login(hub, "admin")
    r = client.post(
        f"/ui/sandbox/deals/{appeal.crm_entity_id}/reply",
        data={"csrf_token": client.csrf, "text": "Ответ из карточки", "user_id": "1"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=queued"), r.text
    [reply] = hub.replies()
    assert (reply.origin, reply.appeal_id, reply.text) == (
        "deal_card",
        appeal.id,
        "Ответ из карточки",
    )
    assert len(hub.jobs("reply.send")) == 1


@SQLITE_ONLY
def test_roles_csrf_and_input(hub: AppHub) -> None:
    _telegram_customer_writes(hub)
    [appeal] = hub.appeals()
    url = f"/ui/sandbox/chats/{appeal.b24_chat_id}/reply"
    editor = _login(hub, "editor")
    assert editor.get("/ui/sandbox").status_code == 403
    assert 'href="/ui/sandbox"' not in editor.get("/ui/dashboard").text  # no nav entry
    reviewer = _login(hub, "reviewer")
    assert "chat-reply-send" not in reviewer.get(f"/ui/sandbox/chats/{appeal.b24_chat_id}").text
    r = reviewer.post(url, data={"csrf_token": reviewer.csrf, "text": "нельзя"})  # type: ignore[attr-defined]
    assert r.status_code == 403
    operator = _login(hub, "operator")
    assert operator.post(url, data={"text": "без токена"}).status_code == 403
    empty = operator.post(url, data={"csrf_token": operator.csrf, "text": "  "})  # type: ignore[attr-defined]
    assert empty.headers["location"].endswith("?notice=empty")
    missing = operator.post(
        "/ui/sandbox/chats/999999/reply",
        data={"csrf_token": operator.csrf, "text": "x"},  # type: ignore[attr-defined]
    )
    assert missing.status_code == 404
    assert hub.replies() == []


@SQLITE_ONLY
def test_with_a_real_portal_the_page_links_to_it(
    ui_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIENTHUB_B24_WEBHOOK_URL", "https://shop.bitrix24.ru/rest/1/abc/")
    get_settings.cache_clear()
    try:
        with serve(ui_engine) as server:
            client = login(server, "admin")
            page = client.get("/ui/sandbox").text
            assert 'href="https://shop.bitrix24.ru"' in page and 'id="sandbox-absent"' in page
            assert 'href="/ui/sandbox"' not in client.get("/ui/dashboard").text
            r = client.post(
                "/ui/sandbox/chats/1/reply", data={"csrf_token": client.csrf, "text": "x"}
            )  # type: ignore[attr-defined]
            assert r.status_code == 404
    finally:
        get_settings.cache_clear()


@SQLITE_ONLY
def test_keyset_pages(hub: AppHub) -> None:
    for i in range(55):
        _rest(hub, "crm.item.add", entityTypeId=3, fields={"name": f"Контакт{i:02d}"})
    client = _login(hub, "admin")
    first = client.get("/ui/sandbox?tab=contacts").text
    assert "Контакт54" in first and "Контакт04" not in first
    link = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = client.get(link.replace("&amp;", "&")).text
    assert "Контакт04" in second and "Контакт54" not in second
    assert 'id="next-page"' not in second
