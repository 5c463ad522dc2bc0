"""Writes without an idempotency key (Telegram ``sendMessage``, OK messages and comments) are
never retried on an ambiguous failure: a timeout after the platform got the request, a 5xx, a
dropped connection. Only failures that prove nothing was sent (connection refused, 429, OK's
flood code) are retried. Over real HTTP against the platform fakes, with the faults injected by
small ASGI wrappers around them. And an SMTP server without AUTH is a permanent error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.base import OutgoingReply, SourceConfig
from connectors.email import smtp
from connectors.ok import connector as ok_connector
from connectors.ok.client import OkClient
from connectors.platform_http import PermanentError, RetryPolicy, TransientError
from connectors.telegram import connector as tg_connector
from connectors.telegram.client import TelegramClient
from hub.fakes.ok import FakeOk
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.replies import not_sent
from tests.connectors.asgi_faults import Faults, answer
from tests.mailservers import smtp_sink  # noqa: F401 - fixture

TOKEN = "777:writes-token"
OK_TOKEN = "tkn1.writes"


def _reply(text: str, **fields: Any) -> OutgoingReply:
    return OutgoingReply(
        reply_id="41", text=text, thread_key=None, in_reply_to=None, author_platform_id=None,
        fields=fields,
    )  # fmt: skip


# -- Telegram ----------------------------------------------------------------------------------
@pytest.fixture
def telegram() -> Iterator[tuple[FakeTelegram, Faults, SourceConfig]]:
    fake = FakeTelegram(token=TOKEN)
    faults = Faults(fake.app, "/sendMessage")
    with serve(faults) as url:  # type: ignore[arg-type]
        config = {"api_url": url, "timeout_seconds": 0.5}
        yield fake, faults, SourceConfig("telegram", "bot", config, {"token": TOKEN})


def test_telegram_timeout_after_the_message_arrived_is_not_resent(telegram) -> None:
    fake, faults, source = telegram
    faults.plan.append(("late", 2.0))
    with pytest.raises(TransientError) as err:
        tg_connector.send_reply(_reply("Заказ приедет завтра", chat_id=3001), source)
    assert [m["text"] for m in fake.sent] == ["Заказ приедет завтра"]  # exactly one, no retry
    assert faults.seen == 1
    assert err.value.detail == "network error: ReadTimeout"
    assert not err.value.unprocessed and not not_sent(err.value)  # the reply job: "uncertain"


def test_telegram_5xx_after_processing_is_not_resent(telegram) -> None:
    fake, faults, source = telegram
    faults.plan.append(("after", (502, {"ok": False, "error_code": 502, "description": "Bad"})))
    with pytest.raises(TransientError) as err:
        tg_connector.send_reply(_reply("Ответ", chat_id=3002), source)
    assert len(fake.sent) == 1 and faults.seen == 1
    assert not not_sent(err.value)


def test_telegram_429_is_retried_once_allowed(telegram) -> None:
    fake, faults, source = telegram
    refusal = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0"}
    faults.plan.append(("before", (429, {**refusal, "parameters": {"retry_after": 0}})))
    sent = tg_connector.send_reply(_reply("Ответ после паузы", chat_id=3003), source)
    assert [m["text"] for m in fake.sent] == ["Ответ после паузы"]
    assert faults.seen == 2 and sent.platform_message_id == str(fake.sent[0]["message_id"])


def test_telegram_connection_refused_is_retried_and_known_unsent() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = RetryPolicy(attempts=3, base_seconds=0.01)
    client = TelegramClient(TOKEN, base_url=f"http://127.0.0.1:{port}", retry=policy)
    calls = 0
    original = client._call_once

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args)

    client._call_once = counting  # type: ignore[method-assign]
    with client, pytest.raises(TransientError) as err:
        client.send_message(chat_id=3004, text="x")
    assert calls == 3  # nothing left the machine: retrying cannot duplicate
    assert err.value.unprocessed and not_sent(err.value)


def test_telegram_reads_are_still_retried_on_5xx() -> None:
    fake = FakeTelegram(token=TOKEN)
    fake.fail_next("getWebhookInfo", 500)
    with serve(fake.app) as url:
        policy = RetryPolicy(attempts=3, base_seconds=0.01)
        with TelegramClient(TOKEN, base_url=url, retry=policy) as client:
            assert client.get_webhook_info() is not None


def test_telegram_a_later_part_failing_makes_the_whole_reply_ambiguous() -> None:
    """The customer has part one: even a clean refusal of part two must not let the whole reply
    be sent again."""
    fake = FakeTelegram(token=TOKEN)
    calls = {"n": 0}
    blocked = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}

    async def second_refused(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/sendMessage"):
            calls["n"] += 1
            if calls["n"] == 2:
                return await answer(send, 403, blocked)
        await fake.app(scope, receive, send)

    text = ("слово " * 700).strip() + "\n" + ("второе " * 200).strip()  # > 4096: two parts
    with serve(second_refused) as url:  # type: ignore[arg-type]
        source = SourceConfig("telegram", "bot", {"api_url": url}, {"token": TOKEN})
        with pytest.raises(TransientError) as err:
            tg_connector.send_reply(_reply(text, chat_id=3005), source)
    assert len(fake.sent) == 1 and calls["n"] == 2
    assert err.value.detail.startswith("1 of 2 parts delivered, then: sendMessage: 403")
    assert not not_sent(err.value)


# -- OK ----------------------------------------------------------------------------------------
@pytest.fixture
def ok() -> Iterator[tuple[FakeOk, Faults, SourceConfig]]:
    fake = FakeOk(token=OK_TOKEN)
    faults = Faults(fake.app, "/graph/me/messages/")
    with serve(faults) as url:  # type: ignore[arg-type]
        config = {"api_url": url, "timeout_seconds": 0.5, "rate_per_second": 100}
        yield fake, faults, SourceConfig("ok", "group", config, {"token": OK_TOKEN})


def test_ok_timeout_after_the_message_arrived_is_not_resent(ok) -> None:
    fake, faults, source = ok
    faults.plan.append(("late", 2.0))
    with pytest.raises(TransientError) as err:
        ok_connector.send_reply(_reply("Спасибо", chat_id="chat:C1"), source)
    assert [m["text"] for m in fake.sent] == ["Спасибо"] and faults.seen == 1
    assert not not_sent(err.value)


@pytest.mark.parametrize(
    "answer",
    [(500, {}), (200, {"error_code": 1, "error_msg": "UNKNOWN"}), (200, {"error_code": 2})],
    ids=["http-500", "code-1-unknown", "code-2-service"],
)
def test_ok_ambiguous_errors_after_processing_are_not_resent(ok, answer) -> None:
    fake, faults, source = ok
    faults.plan.append(("after", answer))
    with pytest.raises(TransientError) as err:
        ok_connector.send_reply(_reply("Ответ", chat_id="chat:C2"), source)
    assert len(fake.sent) == 1 and faults.seen == 1
    assert not not_sent(err.value)


@pytest.mark.parametrize(
    "answer", [(429, {}), (200, {"error_code": 8, "error_msg": "FLOOD_BLOCKED"})]
)
def test_ok_refusals_before_execution_are_retried(ok, answer, monkeypatch) -> None:
    fake, faults, source = ok
    monkeypatch.setattr("connectors.ok.client.TRANSIENT_CODES", {1: 0.0, 2: 0.0, 8: 0.0})
    monkeypatch.setattr("connectors.platform_http.RetryPolicy.base_seconds", 0.01)
    faults.plan.append(("before", answer))
    sent = ok_connector.send_reply(_reply("Повтор разрешён", chat_id="chat:C3"), source)
    assert [m["text"] for m in fake.sent] == ["Повтор разрешён"] and faults.seen == 2
    assert sent.platform_message_id == fake.sent[0]["mid"]


def test_ok_comment_is_a_write_too() -> None:
    client = OkClient(app_key="k", app_secret="s", user_token="u", base_url="http://x")
    seen: list[bool] = []

    def fake_rest(method: str, *, write: bool = False, **params: Any) -> Any:
        seen.append(write)
        return {"id": "c1"}

    client.rest = fake_rest  # type: ignore[method-assign]
    client.add_comment(topic_id="t", text="x", reply_to=None)
    assert seen == [True]


# -- SMTP --------------------------------------------------------------------------------------
def test_smtp_server_without_auth_while_credentials_are_set_is_permanent(
    smtp_sink,  # noqa: F811
) -> None:
    source = SourceConfig(
        "email", "box",
        {"smtp_host": smtp_sink.host, "smtp_port": smtp_sink.port, "smtp_security": "none",
         "username": "support@retail-sample.ru", "timeout_seconds": 5},
        {"password": "secret"},
    )  # fmt: skip
    reply = _reply("Здравствуйте", reply_to="client@example.ru", subject="Вопрос")
    with pytest.raises(PermanentError) as err:
        smtp.send_reply(reply, source)
    assert "AUTH extension not supported" in err.value.detail
    assert smtp_sink.messages == []


def test_smtp_server_down_is_known_unsent() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = SourceConfig(
        "email", "box",
        {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
         "username": "support@retail-sample.ru", "timeout_seconds": 5},
        {},
    )  # fmt: skip
    reply = _reply("Здравствуйте", reply_to="client@example.ru", subject="Вопрос")
    with pytest.raises(TransientError) as err:
        smtp.send_reply(reply, source)
    assert err.value.unprocessed and not_sent(err.value)  # the queue may simply send it later
