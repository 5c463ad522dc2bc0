"""VK, Telegram and OK end to end over real HTTP: the platform's fake sends an event the way the
platform does -> ClientHub's webhook -> parse and route by the sample rule directory -> a deal in
the sandbox Bitrix24 portal; then the operator's reply goes back through ``send_reply`` and the
fake records what the customer would see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors import get_connector
from connectors.base import OutgoingReply, SourceConfig
from hub.bitrix24.client import Bitrix24Client, WebhookAuth
from hub.bitrix24.jobs import KIND, make_handler
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.db import session_scope
from hub.fakes.ok import FakeOk
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.fakes.vk import FakeVk
from hub.jobs import job_handlers
from hub.models import Appeal, RawEvent
from hub.routing import service as routing_service
from hub.rules_io import read_dir
from hub.settings import get_settings
from hub.storage import rulesets
from hub.storage import sources as sources_store
from hub.worker import Worker
from tests.conftest import LiveServer
from tests.connectors.helpers import fixture_bytes

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
# routing_rules/sample/stores.csv: VK community club220001012 belongs to store 1012 (Moscow).
VK_GROUP = 220001012
VK_SOURCE = f"club{VK_GROUP}"
VK_TOKEN, VK_SECRET = "vk1.a.e2e-token", "e2e-callback-secret"
TG_TOKEN, TG_SECRET = "777:e2e-bot-token", "e2e_webhook_secret"
OK_TOKEN, OK_URL_TOKEN = "tkn1.e2e-group", "e2e-url-token"


@dataclass
class Hub:
    url: str
    engine: Engine
    portal: Portal
    sandbox_url: str

    def drain(self) -> None:
        """Parse and deliver everything queued, with a Bitrix24 client on the sandbox portal."""
        client = Bitrix24Client(
            WebhookAuth(f"{self.sandbox_url}/rest/1/sandbox/"),
            timeout=5.0,
            limiter=MemoryRateLimiter(1000, 1000),
        )
        settings = get_settings()
        handlers = {**job_handlers(), KIND: make_handler(lambda _e: client, settings)}
        with client:
            Worker(self.engine, settings=settings, handlers=handlers).run_until_idle()

    def appeals(self) -> list[Appeal]:
        with session_scope(self.engine, read_only=True) as s:
            return list(s.execute(select(Appeal).order_by(Appeal.id)).scalars())

    def deals(self) -> list[dict[str, Any]]:
        return self.portal.store.items(2)

    def comments(self) -> list[dict[str, Any]]:
        return self.portal.store.rows("SELECT data FROM comments ORDER BY id")


@pytest.fixture
def hub(engine, tmp_path, monkeypatch) -> Iterator[Hub]:
    """ClientHub with the sample rules published, delivering into a sandbox portal."""
    with session_scope(engine) as s:
        draft = rulesets.import_draft(session=s, files=read_dir(SAMPLE), created_by="e2e")
        rulesets.publish(session=s, published_by="e2e", version_id=draft.id)
    routing_service.invalidate_cache()
    sandbox = create_sandbox_app(tmp_path / "portal.db", seed_dir=SAMPLE, rate=None)
    with LiveServer(sandbox) as portal:
        monkeypatch.setenv("CLIENTHUB_SANDBOX_ENABLED", "true")
        monkeypatch.setenv("CLIENTHUB_SANDBOX_URL", portal.url)
        get_settings.cache_clear()
        from hub.bootstrap import ensure_defaults
        from hub.http.app import create_app

        ensure_defaults(engine, get_settings())
        with LiveServer(create_app(get_settings(), engine)) as server:
            yield Hub(server.url, engine, sandbox.state.portal, portal.url)
    routing_service.invalidate_cache()


def _add_source(engine: Engine, channel: str, name: str, config: dict, secrets: dict) -> None:
    with session_scope(engine) as s:
        sources_store.upsert(s, channel=channel, source=name, config=config, secrets=secrets)


def _event(channel: str, name: str, **changes: Any) -> dict[str, Any]:
    event = json.loads(fixture_bytes(channel, name))
    event.update(changes)
    return event


def _assert_one_routed_deal(hub: Hub, appeal: Appeal, text: str) -> dict[str, Any]:
    assert appeal.delivery_state == "delivered", appeal.delivery_error
    [deal] = [d for d in hub.deals() if d["id"] == appeal.crm_entity_id]
    # The deal is where the routing decided, with the responsible it chose.
    assert appeal.target and appeal.bitrix_user_id
    assert deal["assignedById"] == appeal.bitrix_user_id
    assert deal["categoryId"] == appeal.target["pipeline"]
    assert deal["stageId"] == appeal.target["stage"]
    assert deal["originId"] == str(appeal.id)
    assert any(text in c["COMMENT"] for c in hub.comments() if c["ENTITY_ID"] == str(deal["id"]))
    return deal


def _reply(appeal: Appeal, reply_id: str, text: str) -> OutgoingReply:
    return OutgoingReply(
        reply_id=reply_id,
        text=text,
        thread_key=appeal.thread_key,
        in_reply_to=appeal.external_id,
        author_platform_id=appeal.author_platform_id,
        fields=appeal.fields,
    )


@pytest.fixture
def fake_vk(hub: Hub) -> Iterator[tuple[FakeVk, SourceConfig]]:
    fake = FakeVk(group_id=VK_GROUP, token=VK_TOKEN, secret=VK_SECRET)
    with serve(fake.app) as api:
        config = {"group_id": VK_GROUP, "confirmation": "e2e-code", "api_url": f"{api}/method"}
        secrets = {"secret": VK_SECRET, "token": VK_TOKEN}
        _add_source(hub.engine, "vk", VK_SOURCE, config, secrets)
        yield fake, SourceConfig("vk", VK_SOURCE, config, secrets)


def _vk_message(text: str) -> dict[str, Any]:
    event = _event("vk", "message_new__text", group_id=VK_GROUP)
    event["object"]["message"]["text"] = text
    return event


class TestVk:
    def test_message_becomes_a_routed_deal_and_the_reply_reaches_the_dialogue(
        self, hub, fake_vk
    ) -> None:
        fake, source = fake_vk
        text = "Здравствуйте! Есть ли вакансии продавца в вашем магазине?"
        url = f"{hub.url}/hooks/vk/{VK_SOURCE}"
        assert fake.confirm(url).text == "e2e-code"
        assert fake.deliver(url, _vk_message(text)).acknowledged
        hub.drain()
        [appeal] = hub.appeals()
        assert (appeal.region, appeal.topic) == ("moscow", "vacancy")  # store 1012, the words
        _assert_one_routed_deal(hub, appeal, text)

        get_connector("vk").send_reply(_reply(appeal, "101", "Да, есть! Позвоните"), source)
        assert [
            (m["peer_id"], m["text"], m["forward"]["conversation_message_ids"])
            for m in fake.messages
        ] == [(578716413, "Да, есть! Позвоните", [411])]

    def test_wall_comment_becomes_a_deal_and_the_reply_lands_in_its_thread(
        self, hub, fake_vk
    ) -> None:
        fake, source = fake_vk
        event = _event("vk", "wall_reply_new__reply_in_thread", group_id=VK_GROUP)
        event["object"].update(owner_id=-VK_GROUP, post_owner_id=-VK_GROUP)
        assert fake.deliver(f"{hub.url}/hooks/vk/{VK_SOURCE}", event).acknowledged
        hub.drain()
        [appeal] = hub.appeals()
        assert (appeal.kind, appeal.thread_key) == ("comment", f"wall:-{VK_GROUP}_310")
        _assert_one_routed_deal(hub, appeal, "в Твери тоже нет скидки")

        get_connector("vk").send_reply(_reply(appeal, "102", "Проверим цены"), source)
        assert [
            (c["owner_id"], c["post_id"], c["reply_to_comment"], c["from_group"])
            for c in fake.comments
        ] == [(-VK_GROUP, 310, 318, VK_GROUP)]

    def test_the_same_event_three_times_is_one_appeal_and_one_deal(self, hub, fake_vk) -> None:
        fake, _ = fake_vk
        event = _vk_message("Хочу оставить отзыв о магазине")
        for _ in range(3):
            assert fake.deliver(f"{hub.url}/hooks/vk/{VK_SOURCE}", event).acknowledged
            hub.drain()
        assert len(hub.appeals()) == 1
        assert len(hub.deals()) == 1


class TestTelegram:
    def test_discussion_comment_becomes_a_deal_and_the_reply_joins_the_thread(self, hub) -> None:
        fake = FakeTelegram(token=TG_TOKEN)
        with serve(fake.app) as api:
            config, secrets = {"api_url": api}, {"token": TG_TOKEN, "webhook_secret": TG_SECRET}
            _add_source(hub.engine, "telegram", "shopbot", config, secrets)
            update = _event("telegram", "message__discussion_comment")
            delivery = fake.deliver(f"{hub.url}/hooks/telegram/shopbot", update, secret=TG_SECRET)
            assert delivery.statuses == [200]
            hub.drain()
            [appeal] = hub.appeals()
            assert (appeal.kind, appeal.author_name) == ("comment", "Мария Иванова")
            _assert_one_routed_deal(hub, appeal, "А вакансии продавцов там будут?")

            source = SourceConfig("telegram", "shopbot", config, secrets)
            get_connector("telegram").send_reply(_reply(appeal, "201", "Да, с июня"), source)
        assert [
            (m["chat_id"], m["reply_parameters"]["message_id"], m["text"]) for m in fake.sent
        ] == [(-1009876543210, 52, "Да, с июня")]


class TestOk:
    def test_group_message_becomes_a_deal_and_the_reply_goes_to_the_chat(self, hub) -> None:
        fake = FakeOk(token=OK_TOKEN)
        with serve(fake.app) as api:
            config, secrets = {"api_url": api}, {"token": OK_TOKEN, "url_token": OK_URL_TOKEN}
            _add_source(hub.engine, "ok", "group", config, secrets)
            body = _event("ok", "MESSAGE_CREATED__webhook_type_image")
            url = f"{hub.url}/hooks/ok/group?token={OK_URL_TOKEN}"
            assert fake.deliver(url, body).statuses == [200]
            hub.drain()
            [appeal] = hub.appeals()
            _assert_one_routed_deal(hub, appeal, "Фото витрины, ценники перепутаны")
            assert len(_raw(hub.engine)) == 1

            source = SourceConfig("ok", "group", config, secrets)
            get_connector("ok").send_reply(_reply(appeal, "301", "Спасибо, исправим"), source)
        assert [(m["chat_id"], m["text"]) for m in fake.sent] == [
            ("chat:C4fb1a2b3c4d5", "Спасибо, исправим")
        ]


def _raw(engine: Engine) -> list[RawEvent]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(RawEvent)).scalars())
