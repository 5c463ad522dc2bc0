"""Telegram connector: every recorded update, the webhook secret, replies, files, getUpdates.

Fixtures: the Bot API's official webhook examples (research/channels.md §9; ``from.is_bot`` added,
which every Bot API 3.0+ update carries), and discussion-group updates built from the Bot API
types as python-telegram-bot models them (``Message.is_automatic_forward``, ``forward_origin``
``MessageOriginChannel``, ``message_thread_id``). ``test_fixtures_use_only_known_fields`` checks
each against python-telegram-bot: an unknown field would land in ``api_kwargs``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from telegram import Update
from typer.testing import CliRunner

from connectors.base import (
    Author,
    IgnoredEvent,
    InboundRequest,
    OutgoingReply,
    ParsedAppeal,
    Rejected,
    SourceConfig,
    UnsupportedEvent,
)
from connectors.platform_http import PermanentError
from connectors.telegram import connector
from connectors.telegram import polling as tg_polling
from connectors.telegram.files import router as files_router
from connectors.telegram.parse import EVENT_HANDLERS
from hub.cli_channels import channels_app
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.models import Appeal, RawEvent, RejectedRequest
from hub.settings import get_settings
from hub.storage import poller_cursors
from hub.storage import sources as sources_store
from tests.connectors.helpers import (
    fixture_bytes,
    fixture_names,
    fixtures_without_tests,
    handlers_without_fixtures,
    parse_fixture,
    ts,
)
from tests.helpers import count, drain

TOKEN = "123456:AAE-test-bot-token_xyz"
WEBHOOK_SECRET = "wh-secret_0123456789"


def test_channel_post__post() -> None:
    with pytest.raises(IgnoredEvent, match="a post of the channel itself; "):
        parse_fixture("telegram", "channel_post__post")


def test_edited_message__discussion_comment() -> None:
    assert parse_fixture("telegram", "edited_message__discussion_comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="-1009876543210:52:edit:1717300420",
            thread_key="chat:-1009876543210:post:51",
            text="А вакансии продавцов и кассиров там будут?",
            author=Author(name="Мария Иванова", platform_id="2222222"),
            attachments=[],
            fields={
                "chat_id": -1009876543210,
                "chat_type": "supergroup",
                "message_id": 52,
                "chat_title": "Сеть магазинов «Пример» — обсуждение",
                "message_thread_id": 51,
                "channel_post_id": 245,
                "username": "maria_iv",
                "url": "https://t.me/example_shop_chat/52",
            },
            received_at=ts(1717300420),
            is_edit=True,
        ),
    ]


def test_edited_message__private() -> None:
    assert parse_fixture("telegram", "edited_message__private") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1365:edit:1441646600",
            thread_key="chat:1111111",
            text="Edited text",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1365,
                "username": "Testusername",
            },
            received_at=ts(1441646600),
            is_edit=True,
        ),
    ]


def test_message__automatic_forward() -> None:
    with pytest.raises(IgnoredEvent, match="automatic forward of a channel"):
        parse_fixture("telegram", "message__automatic_forward")


def test_message__comment_as_channel() -> None:
    with pytest.raises(IgnoredEvent, match="written on behalf of the chann"):
        parse_fixture("telegram", "message__comment_as_channel")


def test_message__discussion_comment() -> None:
    assert parse_fixture("telegram", "message__discussion_comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="-1009876543210:52",
            thread_key="chat:-1009876543210:post:51",
            text="А вакансии продавцов там будут?",
            author=Author(name="Мария Иванова", platform_id="2222222"),
            attachments=[],
            fields={
                "chat_id": -1009876543210,
                "chat_type": "supergroup",
                "message_id": 52,
                "chat_title": "Сеть магазинов «Пример» — обсуждение",
                "message_thread_id": 51,
                "channel_post_id": 245,
                "username": "maria_iv",
                "url": "https://t.me/example_shop_chat/52",
            },
            received_at=ts(1717300300),
            is_edit=False,
        ),
    ]


def test_message__discussion_reply_in_thread() -> None:
    assert parse_fixture("telegram", "message__discussion_reply_in_thread") == [
        ParsedAppeal(
            kind="comment",
            external_id="-1009876543210:54",
            thread_key="chat:-1009876543210:post:51",
            text="Тоже интересно, и график какой",
            author=Author(name="Олег", platform_id="3333333"),
            attachments=[],
            fields={
                "chat_id": -1009876543210,
                "chat_type": "supergroup",
                "message_id": 54,
                "chat_title": "Сеть магазинов «Пример» — обсуждение",
                "message_thread_id": 51,
                "url": "https://t.me/example_shop_chat/54",
                "reply_to_text": "А вакансии продавцов там будут?",
            },
            received_at=ts(1717300900),
            is_edit=False,
        ),
    ]


def test_message__document() -> None:
    assert parse_fixture("telegram", "message__document") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1369",
            thread_key="chat:1111111",
            text="[документ]",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[
                {
                    "type": "document",
                    "file_id": "BQACAgIAAxkBAAIBaGZkAAFjaGVja19wZGYAAQ",
                    "file_unique_id": "AgADcheck",
                    "size": 48211,
                    "url": "/files/telegram/main/BQACAgIAAxkBAAIBaGZkAAFjaGVja19wZGYAAQ",
                    "name": "чек_4512.pdf",
                    "mime_type": "application/pdf",
                }
            ],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1369,
                "username": "Testusername",
            },
            received_at=ts(1717400200),
            is_edit=False,
        ),
    ]


def test_message__photo() -> None:
    assert parse_fixture("telegram", "message__photo") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1368",
            thread_key="chat:1111111",
            text="Вот так выглядит ценник на полке",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[
                {
                    "type": "photo",
                    "file_id": "AgACAgIAAxkBAAIBZ2ZkAAF1c2VyX3Bob3RvX2xhcmdlAAE",
                    "file_unique_id": "AQADlarge",
                    "size": 85741,
                    "url": "/files/telegram/main/AgACAgIAAxkBAAIBZ2ZkAAF1c2VyX3Bob3RvX2xhcmdlAAE",
                    "width": 1280,
                    "height": 960,
                }
            ],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1368,
                "username": "Testusername",
            },
            received_at=ts(1717400100),
            is_edit=False,
        ),
    ]


def test_message__private_text() -> None:
    assert parse_fixture("telegram", "message__private_text") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1366",
            thread_key="chat:1111111",
            text="Добрый день! Заказ 4512 не пришёл в магазин на Советской, 12.",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1366,
                "username": "Testusername",
            },
            received_at=ts(1717400000),
            is_edit=False,
        ),
    ]


def test_message__reply() -> None:
    assert parse_fixture("telegram", "message__reply") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1367",
            thread_key="chat:1111111",
            text="Уточняю: заказ оформлен 1 июня",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1367,
                "username": "Testusername",
                "reply_to_text": "Original",
            },
            received_at=ts(1441645532),
            is_edit=False,
        ),
    ]


def test_message__start_command() -> None:
    with pytest.raises(IgnoredEvent, match="/start: the customer opened th"):
        parse_fixture("telegram", "message__start_command")


def test_message__voice() -> None:
    assert parse_fixture("telegram", "message__voice") == [
        ParsedAppeal(
            kind="message",
            external_id="1111111:1370",
            thread_key="chat:1111111",
            text="[голосовое сообщение]",
            author=Author(name="Test Firstname Test Lastname", platform_id="1111111"),
            attachments=[
                {
                    "type": "voice",
                    "file_id": "AwACAgIAAxkBAAIBaWZkAAF2b2ljZV9tc2cAAQ",
                    "file_unique_id": "AgADvoice",
                    "size": 21504,
                    "url": "/files/telegram/main/AwACAgIAAxkBAAIBaWZkAAF2b2ljZV9tc2cAAQ",
                    "duration": 7,
                    "mime_type": "audio/ogg",
                }
            ],
            fields={
                "chat_id": 1111111,
                "chat_type": "private",
                "message_id": 1370,
                "username": "Testusername",
            },
            received_at=ts(1717400300),
            is_edit=False,
        ),
    ]


def test_my_chat_member__unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="Telegram update kind 'my_chat_member' is"):
        parse_fixture("telegram", "my_chat_member__unsupported")


def test_edited_channel_post__post() -> None:
    with pytest.raises(IgnoredEvent, match="a post of the channel itself"):
        parse_fixture("telegram", "edited_channel_post__post")


def test_every_fixture_has_a_test_and_every_update_kind_a_fixture() -> None:
    assert fixtures_without_tests("telegram", sys.modules[__name__]) == []
    assert handlers_without_fixtures("telegram", EVENT_HANDLERS) == []


def _unknown_fields(obj: object, path: str = "update") -> list[str]:
    found = [f"{path}.{k}" for k in getattr(obj, "api_kwargs", {}) or {}]
    for name in getattr(obj, "__slots__", ()):
        value = getattr(obj, name, None)
        if hasattr(value, "api_kwargs"):
            found += _unknown_fields(value, f"{path}.{name}")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if hasattr(item, "api_kwargs"):
                    found += _unknown_fields(item, f"{path}.{name}[{i}]")
    return found


@pytest.mark.parametrize("name", fixture_names("telegram"))
def test_fixtures_use_only_known_fields(name: str) -> None:
    update = Update.de_json(json.loads(fixture_bytes("telegram", name)), None)
    assert _unknown_fields(update) == []


def _request(body: dict, secret: str | None) -> InboundRequest:
    headers = {"x-telegram-bot-api-secret-token": secret} if secret is not None else {}
    return InboundRequest(
        "POST", "/hooks/telegram/bot", headers, {}, json.dumps(body).encode(), "application/json"
    )


SOURCE = SourceConfig("telegram", "bot", {}, {"webhook_secret": WEBHOOK_SECRET, "token": TOKEN})


class TestVerify:
    def test_update_is_keyed_by_update_id(self) -> None:
        body = json.loads(fixture_bytes("telegram", "message__private_text"))
        v = connector.verify(_request(body, WEBHOOK_SECRET), SOURCE)
        assert (v.store, v.external_id, v.event_type) == (True, "10001", "message")

    @pytest.mark.parametrize("secret", [None, "", "wh-secret_0123456788"])
    def test_forged_or_missing_secret_token_is_refused(self, secret: str | None) -> None:
        body = json.loads(fixture_bytes("telegram", "message__private_text"))
        with pytest.raises(Rejected) as exc:
            connector.verify(_request(body, secret), SOURCE)
        assert exc.value.status == 403

    def test_a_source_without_a_webhook_secret_accepts_nothing(self) -> None:
        body = json.loads(fixture_bytes("telegram", "message__private_text"))
        with pytest.raises(Rejected, match="no webhook secret"):
            connector.verify(_request(body, ""), SourceConfig("telegram", "bot", {}, {}))


@pytest.fixture
def fake_tg() -> Iterator[tuple[FakeTelegram, SourceConfig]]:
    fake = FakeTelegram(token=TOKEN)
    with serve(fake.app) as url:
        yield fake, SourceConfig("telegram", "bot", {"api_url": url}, dict(SOURCE.secrets))


def _reply(fixture: str, reply_id: str, text: str) -> OutgoingReply:
    appeal = parse_fixture("telegram", fixture)[0]
    return OutgoingReply(
        reply_id,
        text,
        appeal.thread_key,
        appeal.external_id,
        appeal.author.platform_id,
        appeal.fields,
    )


class TestSendReply:
    def test_private_reply_quotes_the_customers_message(self, fake_tg) -> None:
        fake, source = fake_tg
        sent = connector.send_reply(_reply("message__private_text", "1", "Проверим заказ"), source)
        assert fake.sent == [
            {
                "chat_id": 1111111,
                "text": "Проверим заказ",
                "reply_parameters": {"message_id": 1366, "allow_sending_without_reply": True},
                "message_thread_id": None,
                "message_id": int(sent.platform_message_id),
            }
        ]

    def test_comment_reply_lands_in_the_posts_thread(self, fake_tg) -> None:
        fake, source = fake_tg
        connector.send_reply(
            _reply("message__discussion_comment", "2", "Да, вакансии будут"), source
        )
        assert [(m["chat_id"], m["reply_parameters"]["message_id"]) for m in fake.sent] == [
            (-1009876543210, 52)
        ]

    def test_429_is_retried_after_retry_after(self, fake_tg) -> None:
        fake, source = fake_tg
        fake.fail_next("sendMessage", 429, retry_after=1)
        connector.send_reply(_reply("message__private_text", "3", "Ответ"), source)
        assert len(fake.sent) == 1

    def test_blocked_bot_is_a_permanent_failure(self, fake_tg) -> None:
        fake, source = fake_tg
        fake.chats_blocked.add(1111111)
        with pytest.raises(PermanentError, match="blocked"):
            connector.send_reply(_reply("message__private_text", "4", "Ответ"), source)

    def test_wrong_token_is_refused_and_never_shown(self, fake_tg) -> None:
        _, source = fake_tg
        bad = SourceConfig("telegram", "bot", source.config, {"token": "999:revoked-token"})
        with pytest.raises(PermanentError) as exc:
            connector.send_reply(_reply("message__private_text", "5", "Ответ"), bad)
        assert "revoked" not in str(exc.value) and exc.value.status == 401


def test_file_links_fetch_through_getfile_without_exposing_the_token(
    fake_tg, monkeypatch, request
) -> None:
    # The fake Bot API is on loopback, which the SSRF guard refuses unless told (hub/netguard.py).
    monkeypatch.setenv("CLIENTHUB_ALLOW_PRIVATE_FETCH", "true")
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)
    fake, source = fake_tg
    fake.add_file("AgACphoto", "photos/file_7.jpg", b"\xff\xd8jpeg-bytes")

    class Sources:
        def get(self, channel: str, name: str) -> SourceConfig | None:
            return source if (channel, name) == ("telegram", "bot") else None

    app = FastAPI()
    app.include_router(files_router)
    app.state.sources = Sources()
    with serve(app) as url:
        r = httpx.get(f"{url}/files/telegram/bot/AgACphoto")
        missing = httpx.get(f"{url}/files/telegram/bot/nope")
    assert (r.status_code, r.content, r.headers["content-type"]) == (
        200,
        b"\xff\xd8jpeg-bytes",
        "image/jpeg",
    )
    assert missing.status_code == 404 and TOKEN not in missing.text


class TestWebhookIntake:
    @pytest.fixture
    def hook(self, live_server, engine) -> tuple[str, FakeTelegram]:
        fake = FakeTelegram(token=TOKEN)
        with session_scope(engine) as s:
            sources_store.upsert(s, channel="telegram", source="bot", secrets=dict(SOURCE.secrets))
        return f"{live_server.url}/hooks/telegram/bot", fake

    def test_a_redelivered_update_is_one_appeal(self, hook, engine) -> None:
        url, fake = hook
        update = json.loads(fixture_bytes("telegram", "message__discussion_comment"))
        for _ in range(3):
            assert fake.deliver(url, update, secret=WEBHOOK_SECRET).statuses == [200]
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            appeal = s.execute(select(Appeal)).scalar_one()
        assert (appeal.kind, appeal.thread_key) == ("comment", "chat:-1009876543210:post:51")
        assert count(engine, RawEvent) == 1

    def test_a_forged_secret_gets_403_until_telegram_gives_up(self, hook, engine) -> None:
        url, fake = hook
        update = json.loads(fixture_bytes("telegram", "message__private_text"))
        delivery = fake.deliver(url, update, secret="forged", max_attempts=3)
        assert delivery.statuses == [403, 403, 403]
        assert count(engine, RejectedRequest) == 3
        assert count(engine, RawEvent) == 0


class TestGetUpdates:
    def test_updates_are_stored_once_and_confirmed_after_commit(self, engine, fake_tg) -> None:
        fake, base = fake_tg
        source = SourceConfig(
            "telegram", "bot", {**base.config, "intake": "polling", "poll_timeout": 0}, base.secrets
        )
        fake.updates = [
            json.loads(fixture_bytes("telegram", n))
            for n in ("message__private_text", "message__reply")
        ]
        assert tg_polling.poll_source(engine, source) == 2
        cursor = poller_cursors.get(engine, "telegram-updates:bot")
        assert cursor is not None and cursor.cursor == {"offset": 10003}
        # The updates are forgotten by Telegram only when asked with the new offset.
        assert len(fake.updates) == 2
        assert tg_polling.poll_source(engine, source) == 0
        assert fake.updates == []
        drain(engine)
        assert count(engine, Appeal) == 2

    def test_polling_while_a_webhook_is_set_is_reported(self, engine, fake_tg) -> None:
        fake, base = fake_tg
        fake.webhook = {"url": "https://hub.example/hooks/telegram/bot"}
        with session_scope(engine) as s:
            sources_store.upsert(
                s,
                channel="telegram",
                source="bot",
                config={**base.config, "intake": "polling", "poll_timeout": 0},
                secrets=dict(base.secrets),
            )
        assert tg_polling.poll_all(engine) == 0
        cursor = poller_cursors.get(engine, "telegram-updates:bot")
        assert cursor is not None and "409" in (cursor.last_error or "")


def test_received_at_of_an_edit_is_the_edit_time() -> None:
    appeal = parse_fixture("telegram", "edited_message__private")[0]
    assert appeal.received_at == datetime(2015, 9, 7, 17, 23, 20, tzinfo=UTC)


class TestSetupCommand:
    def test_setup_sets_the_webhook_with_a_stored_secret(self, engine, fake_tg) -> None:
        fake, base = fake_tg
        with session_scope(engine) as s:
            sources_store.upsert(
                s,
                channel="telegram",
                source="bot",
                config=dict(base.config),
                secrets={"token": TOKEN},
            )
        result = CliRunner().invoke(
            channels_app, ["setup", "telegram", "bot", "--url", "https://hub.example.ru"]
        )
        assert result.exit_code == 0, result.output
        with session_scope(engine, read_only=True) as s:
            stored = sources_store.to_config(sources_store.list_all(s)[0])
        assert fake.webhook == {
            "url": "https://hub.example.ru/hooks/telegram/bot",
            "secret_token": stored.secrets["webhook_secret"],
            "allowed_updates": ["message", "edited_message", "channel_post", "edited_channel_post"],
        }
        assert len(stored.secrets["webhook_secret"]) >= 32
        assert stored.secrets["webhook_secret"] not in result.output

        polled = CliRunner().invoke(channels_app, ["setup", "telegram", "bot", "--polling"])
        assert polled.exit_code == 0, polled.output
        assert fake.webhook == {}

    def test_setup_of_an_unknown_source_explains_what_to_do(self, engine) -> None:
        result = CliRunner().invoke(channels_app, ["setup", "telegram", "nobot"])
        assert result.exit_code == 2
        assert "clienthub sources add telegram nobot" in result.output


def test_httpx_request_logs_never_show_the_bot_token(fake_tg, caplog) -> None:
    fake, source = fake_tg
    with caplog.at_level(logging.INFO, logger="httpx"):
        connector.send_reply(_reply("message__private_text", "9", "Ответ"), source)
    assert "sendMessage" in caplog.text
    assert TOKEN not in caplog.text and "/bot***/sendMessage" in caplog.text
