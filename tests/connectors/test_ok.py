"""OK connector: the Bot API webhook messages, polled discussion comments, replies.

Fixtures: the official examples of ``apiok/documentation`` (``graph.user.subscribe``, 2017) for
messages; a ``webhookType`` variant as integrators read it today (research/channels.md §2.1,
uncertain); discussion comments in ClientHub's poller envelope around the comment fields of
``discussions.getComments`` (research/channels.md §2.2).
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
from connectors.ok import connector
from connectors.ok import discussions as ok_discussions
from connectors.ok.client import signature
from connectors.ok.parse import EVENT_HANDLERS
from connectors.platform_http import PermanentError
from hub.db import session_scope
from hub.fakes.ok import FakeOk
from hub.fakes.serve import serve
from hub.models import Appeal, RawEvent
from hub.storage import poller_cursors
from hub.storage import sources as sources_store
from tests.connectors.helpers import (
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
    parse_fixture,
    ts,
)
from tests.helpers import count, drain

TOKEN = "tkn1.ok-group-token"
URL_TOKEN = "u-9f8e7d6c5b4a"
APP = {"app_key": "CBAQKFAKEKEY", "app_secret": "0123456789ABCDEF", "user_token": "ok-user-token"}


def test_CHAT_SYSTEM__unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="OK event 'CHAT_SYSTEM' is not handled"):
        parse_fixture("ok", "CHAT_SYSTEM__unsupported")


def test_MESSAGE_CREATED__share_link() -> None:
    assert parse_fixture("ok", "MESSAGE_CREATED__share_link") == [
        ParsedAppeal(
            kind="message",
            external_id="mid:C3ecb9d02a600.15cea668c4c2481",
            thread_key="chat:C3ecb9d02a600",
            text="https://ya.ru/",
            author=Author(platform_id="user:123456789012"),
            attachments=[{"type": "share", "url": "https://ya.ru/"}],
            fields={
                "chat_id": "chat:C3ecb9d02a600",
                "user_id": "user:123456789012",
                "mid": "mid:C3ecb9d02a600.15cea668c4c2481",
                "seq": "98211018056672380",
            },
            received_at=datetime(2017, 6, 27, 16, 33, 28, 140000, tzinfo=UTC),
            is_edit=False,
        ),
    ]


def test_MESSAGE_CREATED__text() -> None:
    assert parse_fixture("ok", "MESSAGE_CREATED__text") == [
        ParsedAppeal(
            kind="message",
            external_id="mid:C3ecb9d02a600.15cea67d78d2059",
            thread_key="chat:C3ecb9d02a600",
            text="text",
            author=Author(platform_id="user:123456789012"),
            attachments=[],
            fields={
                "chat_id": "chat:C3ecb9d02a600",
                "user_id": "user:123456789012",
                "mid": "mid:C3ecb9d02a600.15cea67d78d2059",
                "seq": "98211023614189660",
            },
            received_at=datetime(2017, 6, 27, 16, 34, 52, 941000, tzinfo=UTC),
            is_edit=False,
        ),
    ]


def test_MESSAGE_CREATED__webhook_type_image() -> None:
    assert parse_fixture("ok", "MESSAGE_CREATED__webhook_type_image") == [
        ParsedAppeal(
            kind="message",
            external_id="mid:C4fb1a2b3c4d5.18f0a1b2c3d4e5f",
            thread_key="chat:C4fb1a2b3c4d5",
            text="Фото витрины, ценники перепутаны",
            author=Author(name="Анна Смирнова", platform_id="user:575123456789"),
            attachments=[
                {
                    "type": "image",
                    "url": "https://i.mycdn.me/i?r=AzEPZsRbOZEKgBhR0XGMT1RkRHkR7CVmaTQa1mZ2sRc",
                }
            ],
            fields={
                "chat_id": "chat:C4fb1a2b3c4d5",
                "user_id": "user:575123456789",
                "mid": "mid:C4fb1a2b3c4d5.18f0a1b2c3d4e5f",
                "seq": "98211023614190001",
                "group_id": "group:70000001234567",
            },
            received_at=datetime(2024, 6, 3, 7, 33, 20, 123000, tzinfo=UTC),
            is_edit=False,
        ),
    ]


def test_discussion_comment__comment() -> None:
    assert parse_fixture("ok", "discussion_comment__comment") == [
        ParsedAppeal(
            kind="comment",
            external_id="comment:155223344556677:MTcxNzQwMDAwMDA6MTIzNDU2",
            thread_key="topic:155223344556677",
            text="Во сколько открывается магазин на Ленина?",
            author=Author(name="Анна Смирнова", platform_id="575123456789"),
            attachments=[],
            fields={
                "group_id": "70000001234567",
                "discussion_id": "155223344556677",
                "discussion_type": "GROUP_TOPIC",
                "comment_id": "MTcxNzQwMDAwMDA6MTIzNDU2",
                "author_id": "575123456789",
                "url": "https://ok.ru/group/70000001234567/topic/155223344556677",
            },
            received_at=ts(1717400000),
            is_edit=False,
        ),
    ]


def test_discussion_comment__group_answer() -> None:
    with pytest.raises(IgnoredEvent, match="written by the group itself: o"):
        parse_fixture("ok", "discussion_comment__group_answer")


def test_every_fixture_has_a_test_and_every_event_kind_a_fixture() -> None:
    assert fixtures_without_tests("ok", sys.modules[__name__]) == []
    assert handlers_without_fixtures("ok", EVENT_HANDLERS) == []


def test_signature_is_md5_of_sorted_params_and_the_session_secret() -> None:
    # sig = md5("k=v" sorted, without access_token and sig + md5(access_token + app_secret))
    params = {"method": "users.getCurrentUser", "format": "json", "application_key": "A"}
    expected = "48643f60847d1312e438f6811204e94a"  # computed by hand from the formula
    assert signature(params, "token", "secret") == expected
    assert signature({**params, "access_token": "token", "sig": "x"}, "token", "secret") == expected


def _request(body: dict, token: str | None, headers: dict | None = None) -> InboundRequest:
    query = {"token": token} if token is not None else {}
    return InboundRequest(
        "POST",
        "/hooks/ok/group",
        headers or {},
        query,
        json.dumps(body).encode(),
        "application/json",
    )


SOURCE = SourceConfig("ok", "group", {}, {"url_token": URL_TOKEN, "token": TOKEN})


class TestVerify:
    def test_message_is_keyed_by_mid(self) -> None:
        body = json.loads(fixture_bytes("ok", "MESSAGE_CREATED__text"))
        v = connector.verify(_request(body, URL_TOKEN), SOURCE)
        assert (v.external_id, v.event_type) == (
            "mid:C3ecb9d02a600.15cea67d78d2059",
            "MESSAGE_CREATED",
        )

    def test_a_malformed_body_is_still_stored_for_parsing_to_judge(self) -> None:
        v = connector.verify(_request({"webhookType": {"oops": 1}}, URL_TOKEN), SOURCE)
        assert (v.store, v.external_id, v.event_type) == (True, None, None)

    @pytest.mark.parametrize("token", [None, "", "u-wrong"])
    def test_wrong_url_token_is_refused(self, token: str | None) -> None:
        body = json.loads(fixture_bytes("ok", "MESSAGE_CREATED__text"))
        with pytest.raises(Rejected) as exc:
            connector.verify(_request(body, token), SOURCE)
        assert exc.value.status == 403

    def test_optional_ip_allow_list(self) -> None:
        body = json.loads(fixture_bytes("ok", "MESSAGE_CREATED__text"))
        source = SourceConfig("ok", "group", {"allowed_ips": ["217.20.145.192/28"]}, SOURCE.secrets)
        ok = _request(body, URL_TOKEN, {"x-real-ip": "217.20.145.200"})
        assert connector.verify(ok, source).store
        with pytest.raises(Rejected, match="not in config.allowed_ips"):
            connector.verify(_request(body, URL_TOKEN, {"x-real-ip": "10.1.2.3"}), source)


@pytest.fixture
def fake_ok() -> Iterator[tuple[FakeOk, SourceConfig]]:
    fake = FakeOk(token=TOKEN, group_id="70000001234567", **APP)
    with serve(fake.app) as url:
        yield (
            fake,
            SourceConfig(
                "ok",
                "group",
                {"api_url": url, "group_id": "70000001234567", "poll_comments": True},
                {**SOURCE.secrets, **APP},
            ),
        )


def _reply(fixture: str, reply_id: str, text: str) -> OutgoingReply:
    appeal = parse_fixture("ok", fixture)[0]
    return OutgoingReply(
        reply_id,
        text,
        appeal.thread_key,
        appeal.external_id,
        appeal.author.platform_id,
        appeal.fields,
    )


class TestSendReply:
    def test_message_reply_goes_to_the_chat(self, fake_ok) -> None:
        fake, source = fake_ok
        sent = connector.send_reply(_reply("MESSAGE_CREATED__text", "1", "Здравствуйте!"), source)
        assert fake.sent == [
            {
                "chat_id": "chat:C3ecb9d02a600",
                "text": "Здравствуйте!",
                "mid": sent.platform_message_id,
            }
        ]

    def test_comment_reply_is_an_official_group_answer_in_the_thread(self, fake_ok) -> None:
        fake, source = fake_ok
        connector.send_reply(_reply("discussion_comment__comment", "2", "С 8 до 22"), source)
        assert fake.comments_added == [
            {
                "id": "c1",
                "topic": "155223344556677",
                "text": "С 8 до 22",
                "reply_to": "MTcxNzQwMDAwMDA6MTIzNDU2",
                "as_admin": "true",
            }
        ]

    def test_expired_token_is_a_permanent_failure(self, fake_ok) -> None:
        _, source = fake_ok
        bad = SourceConfig("ok", "group", source.config, {"token": "tkn1.revoked-XYZ"})
        with pytest.raises(PermanentError, match="102") as exc:
            connector.send_reply(_reply("MESSAGE_CREATED__text", "3", "Ответ"), bad)
        assert "revoked-XYZ" not in str(exc.value)


class TestWebhookIntake:
    def test_message_is_stored_once_and_parsed(self, live_server, engine) -> None:
        fake = FakeOk(token=TOKEN)
        with session_scope(engine) as s:
            sources_store.upsert(s, channel="ok", source="group", secrets=dict(SOURCE.secrets))
        url = f"{live_server.url}/hooks/ok/group?token={URL_TOKEN}"
        body = json.loads(fixture_bytes("ok", "MESSAGE_CREATED__webhook_type_image"))
        assert [fake.deliver(url, body).statuses for _ in range(2)] == [[200], [200]]
        assert fake.deliver(url.replace(URL_TOKEN, "guess"), body).statuses == [403, 403, 403]
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            appeal = s.execute(select(Appeal)).scalar_one()
        assert (appeal.thread_key, appeal.author_name) == ("chat:C4fb1a2b3c4d5", "Анна Смирнова")


class TestDiscussionsPoller:
    def _comment(self, n: int, author_type: str = "USER") -> dict:
        return {
            "id": f"cm{n}",
            "author_id": "575123456789",
            "author_type": author_type,
            "author_name": "Анна Смирнова",
            "text": f"Комментарий {n}",
            "date": "2024-06-03 10:33:20",
            "type": "ACTIVE_MESSAGE",
        }

    def test_comments_are_read_forward_and_never_repeated(self, engine, fake_ok) -> None:
        fake, source = fake_ok
        fake.topics = {"t1": [self._comment(i) for i in range(150)], "t2": [self._comment(900)]}
        assert ok_discussions.poll_source(engine, source) == 151  # two pages of t1, one of t2
        assert ok_discussions.poll_source(engine, source) == 0
        fake.topics["t1"].append(self._comment(150))
        fake.topics["t2"].append(self._comment(901, author_type="GROUP"))
        assert ok_discussions.poll_source(engine, source) == 2
        cursor = poller_cursors.get(engine, "ok-discussions:group")
        assert cursor is not None and cursor.cursor == {"anchors": {"t1": "151", "t2": "2"}}
        drain(engine)
        assert count(engine, RawEvent) == 153
        assert count(engine, Appeal) == 152  # the group's own answer is stored and ignored

    def test_a_bad_signature_secret_is_recorded(self, engine, fake_ok) -> None:
        fake, source = fake_ok
        with session_scope(engine) as s:
            sources_store.upsert(
                s,
                channel="ok",
                source="group",
                config=dict(source.config),
                secrets={**source.secrets, "app_secret": "wrong"},
            )
        assert ok_discussions.poll_all(engine) == 0
        cursor = poller_cursors.get(engine, "ok-discussions:group")
        assert cursor is not None and "104" in (cursor.last_error or "")


def test_message_time_is_the_platform_timestamp_in_ms() -> None:
    appeal = parse_fixture("ok", "MESSAGE_CREATED__text")[0]
    assert appeal.received_at == datetime(2017, 6, 27, 16, 34, 52, 941000, tzinfo=UTC)
