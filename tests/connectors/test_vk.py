"""VK connector: every recorded event, the Callback handshake and secret, replies, Long Poll.

Fixtures come from the research payloads (real captures quoted in vkwave and cpp_vk_lib tests,
see research/channels.md §9) and, for the other event kinds, from the official schema
(``VKCOM/vk-api-schema`` 5.199 ``callback/objects.json``) filled with realistic values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

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
from connectors.payload import PayloadError
from connectors.platform_http import PermanentError, TransientError
from connectors.vk import connector, longpoll
from connectors.vk.client import VkClient, random_ids
from connectors.vk.parse import EVENT_HANDLERS
from hub import queue
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.vk import FakeVk
from hub.models import Appeal, Job, RawEvent, RejectedRequest
from hub.settings import get_settings
from hub.storage import poller_cursors
from hub.storage import sources as sources_store
from tests.connectors.helpers import (
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
    parse_fixture,
    raw_view,
    ts,
)
from tests.helpers import count, drain

GROUP = 191949777
TOKEN = "vk1.a.community-token-for-tests"
SECRET = "s3cr3t-callback-key"


def test_board_post_new__comment() -> None:
    assert parse_fixture("vk", "board_post_new__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="topic:-191949777_39212001:58",
            thread_key="topic:-191949777_39212001",
            text="Есть ли вакансии кассира в Твери?",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "object": "topic",
                "owner_id": -191949777,
                "object_id": 39212001,
                "comment_id": 58,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/topic-191949777_39212001?post=58",
            },
            received_at=ts(1717402000),
            is_edit=False,
        ),
    ]


def test_group_join__unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="VK event type 'group_join' is not handle"):
        parse_fixture("vk", "group_join__unsupported")


def test_market_comment_new__comment() -> None:
    assert parse_fixture("vk", "market_comment_new__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="market:-191949777_8421337:15",
            thread_key="market:-191949777_8421337",
            text="Этот чайник есть в наличии на Ленина?",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "object": "market",
                "owner_id": -191949777,
                "object_id": 8421337,
                "comment_id": 15,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/product-191949777_8421337",
            },
            received_at=ts(1717403000),
            is_edit=False,
        ),
    ]


def test_message_edit__text() -> None:
    assert parse_fixture("vk", "message_edit__text") == [
        ParsedAppeal(
            kind="message",
            external_id="msg:578716413:411:edit:1717400400",
            thread_key="peer:578716413",
            text="Здравствуйте! В магазине на Ленина, 5 не работают обе кассы самообслуживания.",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "peer_id": 578716413,
                "conversation_message_id": 411,
                "message_id": 412,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/gim191949777?sel=578716413",
            },
            received_at=ts(1717400400),
            is_edit=True,
        ),
    ]


def test_message_new__attachments() -> None:
    assert parse_fixture("vk", "message_new__attachments") == [
        ParsedAppeal(
            kind="message",
            external_id="msg:578716413:414",
            thread_key="peer:578716413",
            text="[документ] [голосовое сообщение] [стикер] [ссылка] [запись]",
            author=Author(platform_id="578716413"),
            attachments=[
                {
                    "type": "doc",
                    "url": "https://vk.com/doc578716413_674123456?hash=3d1e&dl=GU2TK:1717400100:aa&api=1&no_preview=1",
                    "name": "чек.pdf",
                    "size": 48211,
                },
                {
                    "type": "audio_message",
                    "url": "https://psv4.userapi.com/c237331/u578716413/audiomsg/d4/3a9f1b2c.mp3",
                    "duration": 7,
                },
                {
                    "type": "sticker",
                    "note": "стикер",
                    "sticker_id": 9006,
                    "url": "https://vk.com/sticker/1-9006-256",
                },
                {
                    "type": "link",
                    "url": "https://example-shop.ru/promo/autumn",
                    "title": "Осенняя распродажа",
                },
                {
                    "type": "wall",
                    "url": "https://vk.com/wall-191949777_1045",
                    "note": "Открытие нового магазина в Твери! Ждём всех 1 июня.",
                },
            ],
            fields={
                "group_id": 191949777,
                "peer_id": 578716413,
                "conversation_message_id": 414,
                "message_id": 415,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/gim191949777?sel=578716413",
            },
            received_at=ts(1717400100),
            is_edit=False,
        ),
    ]


def test_message_new__chat() -> None:
    assert parse_fixture("vk", "message_new__chat") == [
        ParsedAppeal(
            kind="message",
            external_id="msg:2000000008:120470",
            thread_key="peer:2000000008",
            text="123",
            author=Author(platform_id="499047616"),
            attachments=[
                {
                    "type": "photo",
                    "url": "https://sun9-72.userapi.com/impg/RDAqdqUJ4Xwl8czmg88U6wTHUl78-AGvfXfa5Q/G_NgV3CMB0A.jpg?size=569x287&quality=96&proxy=1&sign=1c33322e6b6d9e4e2401be7e6e2dfd47&c_uniq_tag=S3TrLg2dMVuY9Du2iI0AoycCOIfOVfrp-J7vbnkGc0E&type=album",
                    "page": "https://vk.com/photo499047616_457273210",
                }
            ],
            fields={
                "group_id": 191949777,
                "peer_id": 2000000008,
                "conversation_message_id": 120470,
                "message_id": 0,
                "from_id": 499047616,
                "profile": "https://vk.com/id499047616",
                "url": "https://vk.com/gim191949777?sel=2000000008",
            },
            received_at=ts(1614198737),
            is_edit=False,
        ),
    ]


def test_message_new__photo_and_forward() -> None:
    assert parse_fixture("vk", "message_new__photo_and_forward") == [
        ParsedAppeal(
            kind="message",
            external_id="msg:578716413:304",
            thread_key="peer:578716413",
            text="bruh",
            author=Author(platform_id="578716413"),
            attachments=[
                {
                    "type": "photo",
                    "url": "https://sun9-36.userapi.com/c206620/v206620889/3dc83/VngkKLfGEMA.jpg",
                    "page": "https://vk.com/photo578716413_457239018",
                },
                {"type": "forwarded", "note": "meh", "from": "https://vk.com/id578716413"},
                {
                    "type": "photo",
                    "url": "https://sun9-42.userapi.com/c854128/v854128095/1e4670/fmZMqDUIzzg.jpg",
                    "page": "https://vk.com/photo578716413_457239498",
                },
            ],
            fields={
                "group_id": 191949777,
                "peer_id": 578716413,
                "conversation_message_id": 304,
                "message_id": 305,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/gim191949777?sel=578716413",
            },
            received_at=ts(1582576963),
            is_edit=False,
        ),
    ]


def test_message_new__text() -> None:
    assert parse_fixture("vk", "message_new__text") == [
        ParsedAppeal(
            kind="message",
            external_id="msg:578716413:411",
            thread_key="peer:578716413",
            text="Здравствуйте! В магазине на Ленина, 5 не работает касса самообслуживания.",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "peer_id": 578716413,
                "conversation_message_id": 411,
                "message_id": 412,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/gim191949777?sel=578716413",
            },
            received_at=ts(1717400000),
            is_edit=False,
        ),
    ]


def test_message_reply__echo() -> None:
    with pytest.raises(IgnoredEvent, match="message_reply is the community"):
        parse_fixture("vk", "message_reply__echo")


def test_photo_comment_new__comment() -> None:
    assert parse_fixture("vk", "photo_comment_new__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="photo:-191949777_457239017:1",
            thread_key="photo:-191949777_457239017",
            text="а",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "object": "photo",
                "owner_id": -191949777,
                "object_id": 457239017,
                "comment_id": 1,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/photo-191949777_457239017",
            },
            received_at=ts(1582726164),
            is_edit=False,
        ),
    ]


def test_video_comment_new__comment() -> None:
    assert parse_fixture("vk", "video_comment_new__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="video:-191949777_456239025:7",
            thread_key="video:-191949777_456239025",
            text="Где купить то, что в ролике?",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 191949777,
                "object": "video",
                "owner_id": -191949777,
                "object_id": 456239025,
                "comment_id": 7,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/video-191949777_456239025",
            },
            received_at=ts(1717401000),
            is_edit=False,
        ),
    ]


def test_wall_reply_delete__by_author() -> None:
    assert parse_fixture("vk", "wall_reply_delete__by_author") == [
        ParsedAppeal(
            kind="comment",
            external_id="wall:-192764727_310:318:delete",
            thread_key="wall:-192764727_310",
            text="Комментарий 318 удалён пользователем https://vk.com/id578716413.",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 192764727,
                "object": "wall",
                "owner_id": -192764727,
                "object_id": 310,
                "comment_id": 318,
                "deleted": True,
                "deleter_id": 578716413,
                "url": "https://vk.com/wall-192764727_310?reply=318",
            },
            received_at=None,
            is_edit=True,
        ),
    ]


def test_wall_reply_edit__text() -> None:
    assert parse_fixture("vk", "wall_reply_edit__text") == [
        ParsedAppeal(
            kind="comment",
            external_id="wall:-192764727_310:312:edit:b7d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7a8b9c",
            thread_key="wall:-192764727_310",
            text="123, и ещё: цена на полке не совпадает с чеком",
            author=Author(platform_id="499047616"),
            attachments=[],
            fields={
                "group_id": 192764727,
                "object": "wall",
                "owner_id": -192764727,
                "object_id": 310,
                "comment_id": 312,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 499047616,
                "profile": "https://vk.com/id499047616",
                "url": "https://vk.com/wall-192764727_310?reply=312",
            },
            received_at=ts(1614250994),
            is_edit=True,
        ),
    ]


def test_wall_reply_new__comment() -> None:
    assert parse_fixture("vk", "wall_reply_new__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="wall:-192764727_310:312",
            thread_key="wall:-192764727_310",
            text="123",
            author=Author(platform_id="499047616"),
            attachments=[],
            fields={
                "group_id": 192764727,
                "object": "wall",
                "owner_id": -192764727,
                "object_id": 310,
                "comment_id": 312,
                "thread_root": None,
                "reply_to_comment": None,
                "from_id": 499047616,
                "profile": "https://vk.com/id499047616",
                "url": "https://vk.com/wall-192764727_310?reply=312",
            },
            received_at=ts(1614250994),
            is_edit=False,
        ),
    ]


def test_wall_reply_new__community_echo() -> None:
    with pytest.raises(IgnoredEvent, match="written by the community itsel"):
        parse_fixture("vk", "wall_reply_new__community_echo")


def test_wall_reply_new__reply_in_thread() -> None:
    assert parse_fixture("vk", "wall_reply_new__reply_in_thread") == [
        ParsedAppeal(
            kind="comment",
            external_id="wall:-192764727_310:318",
            thread_key="wall:-192764727_310",
            text="Поддерживаю, в Твери тоже нет скидки на кассе",
            author=Author(platform_id="578716413"),
            attachments=[],
            fields={
                "group_id": 192764727,
                "object": "wall",
                "owner_id": -192764727,
                "object_id": 310,
                "comment_id": 318,
                "thread_root": 312,
                "reply_to_comment": 312,
                "from_id": 578716413,
                "profile": "https://vk.com/id578716413",
                "url": "https://vk.com/wall-192764727_310?reply=318&thread=312",
            },
            received_at=ts(1614252000),
            is_edit=False,
        ),
    ]


def test_every_fixture_has_a_test_and_every_event_kind_a_fixture() -> None:
    assert fixtures_without_tests("vk", sys.modules[__name__]) == []
    assert handlers_without_fixtures("vk", EVENT_HANDLERS) == []


def test_a_wrongly_typed_field_fails_with_its_path() -> None:
    event = json.loads(fixture_bytes("vk", "message_new__text"))
    event["object"]["message"]["from_id"] = "Иван"
    raw = raw_view("vk", "message_new__text")
    broken = type(raw)(**{**raw.__dict__, "body": json.dumps(event).encode()})
    with pytest.raises(PayloadError, match=r"object\.message\.from_id: expected an integer"):
        connector.parse(broken)


def _request(body: dict | bytes) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboundRequest("POST", "/hooks/vk/club", {}, {}, raw, "application/json")


SOURCE = SourceConfig(
    "vk", "club", {"group_id": GROUP, "confirmation": "a1b2c3d4"}, {"secret": SECRET}
)


class TestVerify:
    def test_confirmation_is_answered_with_the_code_and_not_stored(self) -> None:
        v = connector.verify(_request({"type": "confirmation", "group_id": GROUP}), SOURCE)
        assert (v.store, v.response_body, v.response_media_type) == (
            False,
            b"a1b2c3d4",
            "text/plain",
        )

    def test_confirmation_for_another_community_is_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            connector.verify(_request({"type": "confirmation", "group_id": 1}), SOURCE)
        assert exc.value.status == 403

    def test_event_is_acknowledged_with_ok_and_keyed_by_event_id(self) -> None:
        event = {**json.loads(fixture_bytes("vk", "message_new__text")), "secret": SECRET}
        v = connector.verify(_request(event), SOURCE)
        assert (v.store, v.external_id, v.event_type, v.response_body) == (
            True,
            event["event_id"],
            "message_new",
            b"ok",
        )

    @pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x"])
    def test_forged_or_missing_secret_is_refused(self, secret: str | None) -> None:
        event = json.loads(fixture_bytes("vk", "message_new__text"))
        if secret is not None:
            event["secret"] = secret
        with pytest.raises(Rejected) as exc:
            connector.verify(_request(event), SOURCE)
        assert exc.value.status == 403

    def test_a_source_without_a_secret_accepts_nothing(self) -> None:
        event = {**json.loads(fixture_bytes("vk", "message_new__text")), "secret": ""}
        bare = SourceConfig("vk", "club", {"group_id": GROUP}, {})
        with pytest.raises(Rejected, match="no VK secret"):
            connector.verify(_request(event), bare)

    def test_unknown_event_types_are_still_stored(self) -> None:
        event = {**json.loads(fixture_bytes("vk", "group_join__unsupported")), "secret": SECRET}
        assert connector.verify(_request(event), SOURCE).store is True


class TestRandomIds:
    def test_numeric_reply_ids_never_collide(self) -> None:
        assert random_ids("1", 2) == [8, 9]
        assert random_ids("2", 1) == [16]
        assert len({r for i in range(1, 2000) for r in random_ids(str(i), 3)}) == 1999 * 3

    def test_other_ids_hash_stably_into_int32(self) -> None:
        ids = random_ids("reply-7f3a", 2)
        assert ids == random_ids("reply-7f3a", 2)
        assert all(0 < i < 2**31 for i in ids)


@pytest.fixture
def fake_vk() -> Iterator[tuple[FakeVk, SourceConfig]]:
    fake = FakeVk(group_id=GROUP, token=TOKEN, secret=SECRET)
    with serve(fake.app) as url:
        source = SourceConfig(
            "vk",
            "club",
            {"group_id": GROUP, "api_url": f"{url}/method"},
            {"secret": SECRET, "token": TOKEN},
        )
        yield fake, source


def _message_reply(reply_id: str, text: str = "Здравствуйте! Передали в магазин.") -> OutgoingReply:
    appeal = parse_fixture("vk", "message_new__text")[0]
    return OutgoingReply(
        reply_id=reply_id,
        text=text,
        thread_key=appeal.thread_key,
        in_reply_to=appeal.external_id,
        author_platform_id=appeal.author.platform_id,
        fields=appeal.fields,
    )


class TestSendReply:
    def test_message_reply_reaches_the_dialogue_quoting_the_customer(self, fake_vk) -> None:
        fake, source = fake_vk
        sent = connector.send_reply(_message_reply("41"), source)
        assert fake.messages == [
            {
                "id": int(sent.platform_message_id),
                "peer_id": 578716413,
                "text": "Здравствуйте! Передали в магазин.",
                "forward": {
                    "peer_id": 578716413,
                    "conversation_message_ids": [411],
                    "is_reply": True,
                },
            }
        ]

    def test_a_retried_reply_is_sent_once(self, fake_vk) -> None:
        fake, source = fake_vk
        first = connector.send_reply(_message_reply("42"), source)
        again = connector.send_reply(_message_reply("42"), source)
        assert first == again
        assert len(fake.messages) == 1

    def test_a_long_reply_is_split_and_each_part_sent_once(self, fake_vk) -> None:
        fake, source = fake_vk
        text = ("Абзац ответа. " * 300 + "\n") * 2  # ~8,400 characters
        connector.send_reply(_message_reply("43", text), source)
        connector.send_reply(_message_reply("43", text), source)
        assert len(fake.messages) == 3
        assert all(len(m["text"]) <= 4096 for m in fake.messages)
        assert [m["forward"] is not None for m in fake.messages] == [True, False, False]

    def test_rate_limit_error_6_is_retried(self, fake_vk) -> None:
        fake, source = fake_vk
        fake.fail_next("messages.send", 6)
        connector.send_reply(_message_reply("44"), source)
        assert len(fake.messages) == 1
        assert [m for m, _ in fake.calls].count("messages.send") == 2

    def test_flood_control_9_is_left_to_the_job_queue(self, fake_vk) -> None:
        fake, source = fake_vk
        fake.fail_next("messages.send", 9)
        with pytest.raises(TransientError) as exc:
            connector.send_reply(_message_reply("45"), source)
        assert exc.value.code == 9
        assert fake.messages == []

    def test_user_who_never_wrote_is_a_permanent_failure(self, fake_vk) -> None:
        fake, source = fake_vk
        fake.fail_next("messages.send", 901)
        with pytest.raises(PermanentError, match="901"):
            connector.send_reply(_message_reply("46"), source)

    def test_wrong_token_is_a_permanent_failure_without_the_token_in_it(self, fake_vk) -> None:
        _, source = fake_vk
        bad = SourceConfig("vk", "club", source.config, {"token": "vk1.a.revoked"})
        with pytest.raises(PermanentError) as exc:
            connector.send_reply(_message_reply("47"), bad)
        assert exc.value.code == 5
        assert "revoked" not in str(exc.value)

    def test_wall_comment_reply_lands_in_the_thread_as_the_community(self, fake_vk) -> None:
        fake, source = fake_vk
        appeal = parse_fixture("vk", "wall_reply_new__reply_in_thread")[0]
        reply = OutgoingReply(
            "48",
            "Ответили в личные сообщения",
            appeal.thread_key,
            appeal.external_id,
            appeal.author.platform_id,
            appeal.fields,
        )
        sent = connector.send_reply(reply, source)
        connector.send_reply(reply, source)  # retried: VK's guid makes it one comment
        assert fake.comments == [
            {
                "id": int(sent.platform_message_id),
                "owner_id": -192764727,
                "post_id": 310,
                "from_group": 192764727,
                "reply_to_comment": 318,
                "text": "Ответили в личные сообщения",
                "guid": "clienthub-48",
            }
        ]

    def test_photo_comment_needs_a_user_token(self, fake_vk) -> None:
        _, source = fake_vk
        appeal = parse_fixture("vk", "photo_comment_new__comment")[0]
        reply = OutgoingReply(
            "49", "Спасибо!", appeal.thread_key, appeal.external_id, None, appeal.fields
        )
        with pytest.raises(PermanentError, match="user token"):
            connector.send_reply(reply, source)


def test_client_refuses_to_start_without_a_token() -> None:
    with pytest.raises(PermanentError, match="no community token"):
        VkClient("")


def test_received_at_is_the_platform_time() -> None:
    appeal = parse_fixture("vk", "message_new__text")[0]
    assert appeal.received_at == datetime(2024, 6, 3, 7, 33, 20, tzinfo=UTC)


# -- intake over real HTTP into the real database (SQLite and PostgreSQL) -----------------------
@pytest.fixture
def vk_hook(live_server, engine, fake_vk) -> tuple[str, FakeVk]:
    fake, source = fake_vk
    with session_scope(engine) as s:
        sources_store.upsert(
            s,
            channel="vk",
            source="club",
            config={**source.config, "confirmation": "a1b2c3d4"},
            secrets=dict(source.secrets),
        )
    return f"{live_server.url}/hooks/vk/club", fake


def _event(name: str) -> dict:
    return json.loads(fixture_bytes("vk", name))


def _raw_states(engine) -> list[tuple[str, str | None]]:
    with session_scope(engine, read_only=True) as s:
        return [(r.state, r.state_reason) for r in s.execute(select(RawEvent)).scalars()]


class TestIntake:
    def test_confirmation_handshake_answers_the_code(self, vk_hook, engine) -> None:
        url, fake = vk_hook
        r = fake.confirm(url)
        assert (r.status_code, r.text) == (200, "a1b2c3d4")
        assert count(engine, RawEvent) == 0

    def test_the_same_event_delivered_three_times_is_one_appeal(self, vk_hook, engine) -> None:
        url, fake = vk_hook
        deliveries = [fake.deliver(url, _event("message_new__text")) for _ in range(3)]
        assert all(d.attempts == [(200, "ok")] for d in deliveries)
        drain(engine)
        assert count(engine, RawEvent) == 1
        with session_scope(engine, read_only=True) as s:
            appeal = s.execute(select(Appeal)).scalar_one()
        assert (appeal.kind, appeal.thread_key, appeal.author_platform_id) == (
            "message",
            "peer:578716413",
            "578716413",
        )
        assert appeal.text.startswith("Здравствуйте! В магазине на Ленина, 5")

    def test_forged_secret_is_refused_and_recorded_while_vk_retries(self, vk_hook, engine) -> None:
        url, fake = vk_hook
        fake.secret = "forged"
        delivery = fake.deliver(url, _event("message_new__text"), max_attempts=3)
        assert [status for status, _ in delivery.attempts] == [403, 403, 403]
        assert count(engine, RejectedRequest, RejectedRequest.status_code == 403) == 3
        assert count(engine, RawEvent) == 0

    def test_unknown_event_is_stored_acknowledged_and_marked_unsupported(
        self, vk_hook, engine
    ) -> None:
        url, fake = vk_hook
        assert fake.deliver(url, _event("group_join__unsupported")).acknowledged
        drain(engine)
        assert _raw_states(engine) == [("unsupported", "VK event type 'group_join' is not handled")]
        assert count(engine, Appeal) == 0

    def test_the_communitys_own_reply_is_stored_and_ignored(self, vk_hook, engine) -> None:
        url, fake = vk_hook
        assert fake.deliver(url, _event("message_reply__echo")).acknowledged
        drain(engine)
        assert _raw_states(engine) == [
            ("ignored", "message_reply is the community's own outgoing message")
        ]

    def test_a_parse_failure_is_dead_lettered_and_reparsed_after_the_fix(
        self, vk_hook, engine, monkeypatch
    ) -> None:
        url, fake = vk_hook
        fixed = EVENT_HANDLERS["message_new"]

        def buggy(env, raw):
            raise RuntimeError("handler bug")

        monkeypatch.setitem(EVENT_HANDLERS, "message_new", buggy)
        monkeypatch.setenv("CLIENTHUB_RETRY_HORIZON_HOURS", "0")
        get_settings.cache_clear()
        assert fake.deliver(url, _event("message_new__text")).acknowledged
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            job = s.execute(select(Job).where(Job.kind == "parse.event")).scalar_one()
        assert (job.state, job.last_error) == ("dead", "RuntimeError: handler bug")
        assert count(engine, Appeal) == 0

        monkeypatch.setitem(EVENT_HANDLERS, "message_new", fixed)  # the fix is deployed
        with session_scope(engine) as s:
            assert queue.retry(s, job_ids=[job.id]) == 1
        drain(engine)
        assert count(engine, Appeal) == 1
        assert _raw_states(engine) == [("parsed", None)]


class TestLongPoll:
    def _source(self, fake_vk) -> SourceConfig:
        _, source = fake_vk
        return SourceConfig(
            "vk",
            "club",
            {**source.config, "intake": "longpoll", "longpoll_wait": 0},
            source.secrets,
        )

    def test_updates_are_stored_once_and_the_cursor_survives_a_restart(
        self, engine, fake_vk
    ) -> None:
        fake, _ = fake_vk
        source = self._source(fake_vk)
        fake.queue_longpoll(_event("message_new__text"))
        fake.queue_longpoll(_event("wall_reply_new__comment"))
        assert longpoll.poll_source(engine, source) == 2
        assert longpoll.poll_source(engine, source) == 0  # nothing new: nothing repeated
        fake.queue_longpoll(_event("message_edit__text"))
        assert longpoll.poll_source(engine, source) == 1
        cursor = poller_cursors.get(engine, "vk-longpoll:club")
        assert cursor is not None and cursor.cursor["ts"] == "3" and cursor.last_error is None
        drain(engine)
        assert count(engine, Appeal) == 3

    def test_an_expired_key_is_renewed_keeping_ts(self, engine, fake_vk) -> None:
        fake, _ = fake_vk
        source = self._source(fake_vk)
        fake.queue_longpoll(_event("message_new__text"))
        assert longpoll.poll_source(engine, source) == 1
        fake.longpoll_key = "lp-key-2"
        fake.queue_longpoll(_event("message_edit__text"))
        assert longpoll.poll_source(engine, source) == 0  # failed: 2
        assert longpoll.poll_source(engine, source) == 1
        assert count(engine, RawEvent) == 2

    def test_a_failing_source_is_recorded_on_its_cursor(self, engine, fake_vk) -> None:
        _, source = fake_vk
        with session_scope(engine) as s:
            sources_store.upsert(
                s,
                channel="vk",
                source="club",
                config={**source.config, "intake": "longpoll", "longpoll_wait": 0},
                secrets={"token": "vk1.a.revoked"},
            )
        assert longpoll.poll_all(engine) == 0
        cursor = poller_cursors.get(engine, "vk-longpoll:club")
        assert cursor is not None and "error 5" in (cursor.last_error or "")
