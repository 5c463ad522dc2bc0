"""ClientHub as a Bitrix24 local application against the sandbox portal over HTTP: install and
setup, event authenticity, line switches, uninstall, the settings page and the deal card."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from hub.bitrix24 import app_setup, phpquery
from hub.bitrix24.errors import MethodError
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.vk import FakeVk
from hub.jobs import job_handlers
from hub.models import ConnectorLine, PortalToken
from hub.replies import CHANGE_KIND
from hub.settings import get_settings
from hub.storage import b24_tokens
from hub.storage import sources as sources_store
from hub.worker import Worker
from tests.bitrix24.openlines_env import AppHub, app_hub, seeded_portal  # noqa: F401
from tests.connectors.helpers import fixture_bytes
from tests.helpers import count

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
EVENTS = {e.upper() for e in app_setup.EVENTS}


@pytest.fixture
def hub(app_hub: AppHub) -> AppHub:  # noqa: F811
    app_hub.install()
    return app_hub


def _rows(hub: AppHub, sql: str) -> list[dict]:
    with hub.portal.store.lock:
        return [dict(r) for r in hub.portal.store.conn.execute(sql)]


def _event(hub: AppHub, event: str, data: object, **auth: str) -> httpx.Response:
    """An event as the portal's queue posts it, with the stored app's identity unless given."""
    with session_scope(hub.engine, read_only=True) as s:
        tokens = b24_tokens.load(s, None)
    assert tokens is not None
    body = {
        "event": event,
        "data": data,
        "ts": 1,
        "auth": {
            "domain": tokens.domain,
            "member_id": tokens.member_id,
            "application_token": tokens.application_token,
            **auth,
        },
    }
    return httpx.post(
        f"{hub.url}/bitrix24/events",
        content=phpquery.encode(body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


class TestInstall:
    def test_install_registers_the_connector_and_binds_events_and_the_deal_action(
        self, hub
    ) -> None:
        [connector] = _rows(hub, "SELECT * FROM ol_connectors")
        data = json.loads(connector["data"])
        assert connector["id"] == "clienthub"
        assert data["PLACEMENT_HANDLER"] == f"{hub.url}/bitrix24/connector"
        assert data["ICON"]["DATA_IMAGE"].startswith("data:image/svg+xml,")
        bound = {(b["event"], b["handler"]) for b in _rows(hub, "SELECT * FROM ol_bindings")}
        assert bound == {(e, f"{hub.url}/bitrix24/events") for e in EVENTS}
        placements = {
            p["placement"]: json.loads(p["data"]) for p in _rows(hub, "SELECT * FROM ol_placements")
        }
        assert placements["CRM_DEAL_DETAIL_ACTIVITY"]["OPTIONS"] == {"useBuiltInInterface": "Y"}
        assert placements["SETTING_CONNECTOR"] == {"CONNECTOR": "clienthub"}
        with session_scope(hub.engine, read_only=True) as s:
            row = s.execute(select(PortalToken)).scalar_one()
            tokens = b24_tokens.load(s, None)
        assert tokens and tokens.access_token not in row.access_token_enc  # encrypted at rest

    @SQLITE_ONLY
    def test_a_reinstall_binds_only_what_is_missing_and_follows_a_new_public_url(
        self, hub, monkeypatch
    ) -> None:
        before = len(hub.sb_get("/_sandbox/calls?method=event.bind")["calls"])
        settings = get_settings()
        body = {
            "client_id": settings.sandbox_app_client_id,
            "client_secret": settings.sandbox_app_client_secret.get_secret_value(),
            "install_url": app_setup.install_url(settings),
        }
        assert hub.sb("/_sandbox/apps/install", **body)["status"] == 200
        hub.drain()
        assert len(hub.sb_get("/_sandbox/calls?method=event.bind")["calls"]) == before

        monkeypatch.setenv("CLIENTHUB_PUBLIC_URL", "https://hub.example")  # moved behind a proxy
        get_settings.cache_clear()
        assert hub.sb("/_sandbox/apps/install", **body)["status"] == 200
        hub.drain()
        handlers = {b["handler"] for b in _rows(hub, "SELECT * FROM ol_bindings")}
        assert handlers == {"https://hub.example/bitrix24/events"}
        deal = _rows(hub, "SELECT * FROM ol_placements WHERE placement LIKE 'CRM_DEAL%'")
        assert [p["handler"] for p in deal] == ["https://hub.example/bitrix24/placement/deal"]

    @SQLITE_ONLY
    def test_open_lines_refuse_a_webhook_and_a_bad_connector_id_fails_the_setup(
        self, hub, monkeypatch
    ) -> None:
        hook = httpx.post(
            f"{hub.sandbox_url}/rest/1/sandbox/imconnector.send.messages",
            json={"CONNECTOR": "clienthub", "LINE": 1, "MESSAGES": []},
        )
        assert (hook.status_code, hook.json()["error"]) == (403, "WRONG_AUTH_TYPE")
        monkeypatch.setenv("CLIENTHUB_B24_CONNECTOR_ID", "client.hub")
        get_settings.cache_clear()
        client = app_setup.app_client(get_settings(), hub.engine)
        with client, pytest.raises(MethodError, match="APPLICATION_REGISTRATION_ERROR_POINT"):
            app_setup.setup(client, get_settings())


@SQLITE_ONLY
def test_a_pinned_portal_installs_before_the_keys_are_configured(engine) -> None:
    """Bitrix24 posts the callback on saving the app form, before the admin sees the keys."""
    from hub.http.app import create_app
    from hub.models import Job
    from tests.conftest import LiveServer

    settings = get_settings().model_copy(
        update={"b24_portal_domain": "shop.bitrix24.ru", "sandbox_enabled": False}
    )

    def callback(domain: str) -> dict:
        auth = {"access_token": "a1", "refresh_token": "r1", "expires_in": 3600, "domain": domain,
                "member_id": "m1", "application_token": "t" * 32}  # fmt: skip
        return {"event": "ONAPPINSTALL", "data": {"VERSION": 1}, "auth": auth}

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with LiveServer(create_app(settings, engine)) as server:
        url = f"{server.url}/bitrix24/install"
        other = httpx.post(url, content=phpquery.encode(callback("evil.bitrix24.ru")), headers=form)
        assert other.status_code == 403
        ok = httpx.post(url, content=phpquery.encode(callback("shop.bitrix24.ru")), headers=form)
        assert ok.status_code == 200, ok.text
    assert count(engine, Job, Job.kind == app_setup.SETUP_KIND) == 1


class TestEvents:
    @SQLITE_ONLY
    def test_a_wrong_token_an_unknown_portal_and_an_unknown_event_are_refused(self, hub) -> None:
        assert (
            _event(hub, "ONIMCONNECTORLINEDELETE", 1, application_token="x" * 32).status_code == 403
        )
        assert _event(hub, "ONIMCONNECTORLINEDELETE", 1, domain="evil.example").status_code == 403
        assert _event(hub, "ONIMCONNECTORLINEDELETE", 1, member_id="other").status_code == 403
        assert _event(hub, "ONCRMDEALADD", {"FIELDS": {"ID": 1}}).status_code == 400
        assert _event(hub, "ONIMCONNECTORLINEDELETE", 1).status_code == 200

    def test_line_and_status_delete_switch_the_line_off_and_uninstall_forgets_the_app(
        self, hub
    ) -> None:
        hub.activate_line(1)
        assert count(hub.engine, ConnectorLine, ConnectorLine.active.is_(True)) == 1
        fired = hub.sb("/_sandbox/events/fire", event="OnImConnectorStatusDelete",
                       data={"connector": "clienthub", "line": 1})  # fmt: skip
        assert [d["status"] for d in fired["deliveries"]] == [200]
        assert count(hub.engine, ConnectorLine, ConnectorLine.active.is_(True)) == 0
        hub.activate_line(1)
        hub.sb("/_sandbox/events/fire", event="OnImConnectorLineDelete", data=1)
        assert count(hub.engine, ConnectorLine, ConnectorLine.active.is_(True)) == 0

        fired = hub.sb("/_sandbox/events/fire", event="OnAppUninstall", data={"CLEAN": 0})
        assert [d["status"] for d in fired["deliveries"]] == [200]
        assert count(hub.engine, PortalToken) == 0
        # The forgotten app can no longer vouch for anything.
        again = hub.sb("/_sandbox/events/fire", event="OnImConnectorLineDelete", data=1)
        assert [d["status"] for d in again["deliveries"]] == [403]

    @SQLITE_ONLY
    def test_an_operator_message_in_a_chat_clienthub_does_not_know_is_reported_there(
        self, hub
    ) -> None:
        hub.activate_line(1)
        with app_setup.app_client(get_settings(), hub.engine) as client:
            sent = client.call(
                "imconnector.send.messages",
                {
                    "CONNECTOR": "clienthub",
                    "LINE": 1,
                    "MESSAGES": [
                        {
                            "user": {"id": "someone"},
                            "message": {"id": "m1", "text": "привет"},
                            "chat": {"id": "not-from-clienthub"},
                        }
                    ],
                },
            ).result
        chat_id = int(sent["DATA"]["RESULT"][0]["session"]["CHAT_ID"])
        hub.operator_says(chat_id, "Здравствуйте")
        hub.drain()
        [reply] = hub.replies()
        assert reply.state == "failed" and "no ClientHub conversation" in (reply.last_error or "")
        [chat] = [c for c in hub.chats() if c["chat_id"] == chat_id]
        [system] = [m for m in chat["messages"] if m["system"]]
        assert "НЕ доставлен" in system["text"]


VK_GROUP, VK_TOKEN, VK_SECRET = 220001012, "vk1.a.ol-token", "ol-secret"


@pytest.fixture
def vk_chat(hub: AppHub) -> Iterator[tuple[FakeVk, int]]:
    """A VK dialogue already in the open line (no routing rules: the default pipeline)."""
    hub.activate_line(1)
    fake = FakeVk(group_id=VK_GROUP, token=VK_TOKEN, secret=VK_SECRET)
    with serve(fake.app) as api:
        config = {"group_id": VK_GROUP, "api_url": f"{api}/method"}
        with session_scope(hub.engine) as s:
            sources_store.upsert(s, channel="vk", source=f"club{VK_GROUP}", config=config,
                                 secrets={"secret": VK_SECRET, "token": VK_TOKEN})  # fmt: skip
        event = json.loads(fixture_bytes("vk", "message_new__text"))
        event["group_id"] = VK_GROUP
        assert fake.deliver(f"{hub.url}/hooks/vk/club{VK_GROUP}", event).acknowledged
        hub.drain()
        [appeal] = hub.appeals()
        assert appeal.b24_chat_id is not None
        yield fake, appeal.b24_chat_id


def _run_changes_first(hub: AppHub) -> None:
    """The change job runs before the send (another worker took it while the send waited)."""
    handlers = {k: h for k, h in job_handlers().items() if k == CHANGE_KIND}
    Worker(hub.engine, settings=get_settings(), handlers=handlers).run_until_idle()


class TestChanges:
    @SQLITE_ONLY
    def test_an_edit_or_a_deletion_before_sending_applies_to_what_is_sent(
        self, hub, vk_chat
    ) -> None:
        fake, chat_id = vk_chat
        said = hub.operator_says(chat_id, "Черновик")
        hub.sb(f"/_sandbox/openlines/messages/{said['message_id']}/edit", text="Исправлено")
        _run_changes_first(hub)
        hub.drain()
        assert [m["text"] for m in fake.messages] == ["Администратор портала:\nИсправлено"]

        said = hub.operator_says(chat_id, "Лишнее")
        hub.sb(f"/_sandbox/openlines/messages/{said['message_id']}/delete")
        _run_changes_first(hub)
        hub.drain()
        assert len(fake.messages) == 1
        first, deleted = hub.replies()
        assert (first.state, deleted.state) == ("sent", "deleted")
        assert deleted.notes[-1]["result"] == "applied before sending"


class TestPages:
    @SQLITE_ONLY
    def test_pages_refuse_a_foreign_token_and_a_forged_form(self, hub) -> None:
        form = {"APPLICATION_TOKEN": "f" * 32, "PLACEMENT_OPTIONS": json.dumps({"LINE": "1"})}
        domain = httpx.URL(hub.sandbox_url).netloc.decode()
        page = httpx.post(f"{hub.url}/bitrix24/connector?DOMAIN={domain}", data=form)
        assert page.status_code == 403
        forged = httpx.post(f"{hub.url}/bitrix24/connector/activate", data={"token": "abc"})
        assert forged.status_code == 403
        reply = httpx.post(f"{hub.url}/bitrix24/placement/deal/reply", data={"token": "abc"})
        assert reply.status_code == 403

    @SQLITE_ONLY
    def test_the_line_is_switched_on_and_off_from_the_settings_page(self, hub) -> None:
        assert "подключено" in hub.activate_line(1)
        assert hub.sb_get("/_sandbox/openlines/lines")["lines"][0]["active"] == 1
        html = hub.open_settings(1)
        token = html.split('name="token" value="')[1].split('"')[0]
        off = httpx.post(
            f"{hub.url}/bitrix24/connector/activate", data={"token": token, "action": "deactivate"}
        )
        assert "не подключено" in off.text
        assert hub.sb_get("/_sandbox/openlines/lines")["lines"][0]["active"] == 0
        assert count(hub.engine, ConnectorLine, ConnectorLine.active.is_(True)) == 0

    @SQLITE_ONLY
    def test_a_deal_without_clienthub_appeals_offers_no_reply(self, hub) -> None:
        opened = hub.sb(
            "/_sandbox/placements/open", placement="CRM_DEAL_DETAIL_ACTIVITY", options={"ID": "999"}
        )
        assert opened["status"] == 200 and "нет обращений" in opened["html"]
        token = opened["html"].split('name="token" value="')
        assert len(token) == 1  # no reply form
        # The built-in interface's code is a file: embedded pages allow no inline script.
        assert f'src="{hub.url}/bitrix24/placement/deal.js"' in opened["html"]
        script = httpx.get(f"{hub.url}/bitrix24/placement/deal.js")
        assert script.status_code == 200 and "setLayout" in script.text


class TestCli:
    @SQLITE_ONLY
    def test_install_prints_the_steps_and_status_shows_the_line(self, hub) -> None:
        from typer.testing import CliRunner

        from hub.cli_bitrix24 import bitrix24_app

        steps = CliRunner().invoke(bitrix24_app, ["install"])
        assert steps.exit_code == 0
        assert f"{hub.url}/bitrix24/install" in steps.output
        assert "imopenlines, imconnector" in steps.output
        hub.activate_line(1)
        status = CliRunner().invoke(bitrix24_app, ["status"])
        assert status.exit_code == 0, status.output
        assert "open line 1" in status.output and ": on" in status.output
