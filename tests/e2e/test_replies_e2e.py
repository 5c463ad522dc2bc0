"""Replies end to end over real HTTP: a customer writes (platform fake → ClientHub webhook), the
appeal becomes a deal and, for messengers, an Open Lines chat in the sandbox portal; an operator
answers there (the sandbox fires ``OnImConnectorMessageAdd`` at ClientHub); the answer reaches
the customer in the platform fake, once, and the delivery status goes back to the sandbox.
E-mail and 2GIS are answered from the deal card (placement ``CRM_DEAL_DETAIL_ACTIVITY``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update
from sqlalchemy.exc import OperationalError

from connectors.twogis import poller as twogis_poller
from connectors.twogis.client import TwoGisClient
from hub import queue
from hub.db import session_scope
from hub.fakes.ok import FakeOk
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.fakes.twogis import FakeTwoGis
from hub.fakes.vk import FakeVk
from hub.models import Job, JobState, Reply, ReplyState
from hub.settings import get_settings
from hub.storage import sources as sources_store
from hub.storage.raw_events import IncomingEvent, store_event
from hub.timeutil import utcnow
from tests.bitrix24.openlines_env import (  # noqa: F401 - fixtures
    AppHub,
    app_hub,
    publish_sample_rules,
    seeded_portal,
)
from tests.connectors.helpers import FIXTURES, fixture_bytes
from tests.mailservers import SmtpSink

VK_GROUP = 220001012  # store 1012 in routing_rules/sample/stores.csv
VK_SOURCE = f"club{VK_GROUP}"
VK_TOKEN, VK_SECRET = "vk1.a.replies-token", "replies-callback-secret"
TG_TOKEN, TG_SECRET = "777:replies-bot-token", "replies_webhook_secret"
OK_TOKEN, OK_URL_TOKEN = "tkn1.replies-group", "replies-url-token"
SIGNED = "Администратор портала:\n"  # the sandbox signs as user 1 (NEED_SIGNATURE)


# Backend-neutral paths run on SQLite only; the main flows and the crash tests on both.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def hub(app_hub: AppHub) -> AppHub:  # noqa: F811
    """Installed, the connector switched on for line 1. No rules: deals go to the default
    pipeline (the routed flow is ``routed_hub``; routing itself is tested elsewhere)."""
    app_hub.install()
    app_hub.activate_line(1)
    return app_hub


@pytest.fixture
def routed_hub(hub: AppHub) -> AppHub:
    publish_sample_rules(hub.engine)
    return hub


def _source(hub: AppHub, channel: str, name: str, config: dict, secrets: dict) -> None:
    with session_scope(hub.engine) as s:
        sources_store.upsert(s, channel=channel, source=name, config=config, secrets=secrets)


def _event(channel: str, name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(channel, name))


@pytest.fixture
def vk(hub: AppHub) -> Iterator[FakeVk]:
    fake = FakeVk(group_id=VK_GROUP, token=VK_TOKEN, secret=VK_SECRET)
    with serve(fake.app) as api:
        config = {"group_id": VK_GROUP, "confirmation": "code", "api_url": f"{api}/method"}
        _source(hub, "vk", VK_SOURCE, config, {"secret": VK_SECRET, "token": VK_TOKEN})
        yield fake


def _vk_customer_writes(hub: AppHub, vk: FakeVk, text: str) -> None:
    event = _event("vk", "message_new__text")
    event["group_id"] = VK_GROUP
    event["object"]["message"]["text"] = text
    assert vk.deliver(f"{hub.url}/hooks/vk/{VK_SOURCE}", event).acknowledged
    hub.drain()


def _messages(chat: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    return [m for m in chat["messages"] if m["direction"] == direction]


class TestVk:
    def test_message_becomes_deal_and_chat_and_the_operator_reply_reaches_vk_once(
        self, routed_hub, vk
    ) -> None:
        hub = routed_hub
        _vk_customer_writes(hub, vk, "Здравствуйте! Есть ли вакансии продавца?")
        [appeal] = hub.appeals()
        assert appeal.delivery_state == "delivered" and appeal.b24_chat_id
        assert (appeal.region, appeal.topic) == ("moscow", "vacancy")  # routed by the sample
        chat = hub.chat_of(appeal)
        assert chat["ext_chat_id"] == f"vk:{VK_SOURCE}:peer:578716413"
        assert [m["text"] for m in _messages(chat, "in")] == [
            "Здравствуйте! Есть ли вакансии продавца?"
        ]
        assert appeal.b24_session_id == chat["session_id"]
        [deal] = hub.deals()
        assert f"IM_DIALOG=chat{appeal.b24_chat_id}" in deal["sourceDescription"]
        assert chat["data"]["chat"]["url"].endswith(f"/crm/deal/details/{deal['id']}/")

        said = hub.operator_says(appeal.b24_chat_id, "Да, есть! Приходите [b]завтра[/b].")
        assert [d["status"] for d in said["deliveries"]] == [200]
        # Bitrix24 has no retries, but a duplicate delivery must not send twice.
        again = hub.sb(f"/_sandbox/events/{said['deliveries'][0]['id']}/redeliver")
        assert again["status"] == 200
        hub.drain()

        assert [(m["peer_id"], m["text"]) for m in vk.messages] == [
            (578716413, f"{SIGNED}Да, есть! Приходите завтра.")
        ]
        [reply] = hub.replies()
        assert (reply.state, reply.platform_message_id) == ("sent", str(vk.messages[0]["id"]))
        [answer] = _messages(hub.chat_of(appeal), "out")
        assert (answer["status"], answer["delivered"]) == ("delivered", [reply.platform_message_id])
        [appeal] = hub.appeals()
        assert appeal.state == "answered" and appeal.first_reply_at is not None

    @SQLITE_ONLY
    def test_files_are_linked_and_an_edit_after_sending_is_noted(self, hub, vk) -> None:
        _vk_customer_writes(hub, vk, "Пришлите, пожалуйста, график работы")
        [appeal] = hub.appeals()
        files = [{"name": "график.txt", "content": "пн-вс 9-21"}]
        said = hub.operator_says(appeal.b24_chat_id, "Вот график", files=files)
        hub.drain()
        [reply] = hub.replies()
        [stored] = reply.attachments  # downloaded at once: the portal's link is short-lived
        assert stored["fetched"] and stored["size"] == len("пн-вс 9-21".encode())
        [sent] = vk.messages
        link = re.search(r"график\.txt: (\S+)", sent["text"])
        assert link, sent["text"]
        assert httpx.get(link.group(1)).content == "пн-вс 9-21".encode()

        hub.sb(f"/_sandbox/openlines/messages/{said['message_id']}/edit", text="Вот новый график")
        hub.drain()
        [reply] = hub.replies()
        assert reply.notes[-1]["result"] == "not relayed"
        assert len(vk.messages) == 1  # the edit is not sent as a new message
        system = [m for m in hub.chat_of(appeal)["messages"] if m["system"]]
        assert len(system) == 1 and "cannot edit" in system[0]["text"]

    def test_a_worker_killed_after_the_send_still_gives_one_message(self, hub, vk) -> None:
        _vk_customer_writes(hub, vk, "Можно ли вернуть товар без чека?")
        [appeal] = hub.appeals()
        hub.operator_says(appeal.b24_chat_id, "Да, с паспортом")
        proc = _worker_killed_at(hub, "reply.send:after_send")
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        assert len(vk.messages) == 1  # the platform got it; ClientHub never committed that
        [reply] = hub.replies()
        assert reply.state == ReplyState.sending
        time.sleep(1.2)  # the dead worker's lease runs out
        hub.drain()
        assert [m["text"] for m in vk.messages] == [f"{SIGNED}Да, с паспортом"]
        sends = [c for c in vk.calls if c[0] == "messages.send"]
        assert len(sends) == 2 and sends[0][1]["random_id"] == sends[1][1]["random_id"]
        [reply] = hub.replies()
        assert reply.state == "sent" and reply.platform_message_id == str(vk.messages[0]["id"])


def _grace_passed(hub: AppHub) -> None:
    """Time passes: the send began long ago, and the retry is due now."""
    with session_scope(hub.engine) as s:
        long_ago = utcnow() - timedelta(seconds=get_settings().reply_send_grace_seconds + 1)
        s.execute(update(Reply).where(Reply.state == "sending").values(sending_at=long_ago))
        s.execute(update(Job).where(Job.state == "queued").values(run_at=long_ago))


def _worker_killed_at(hub: AppHub, point: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k.startswith("CLIENTHUB_") or k in {"PATH", "HOME"}
    }
    env.update(CLIENTHUB_FAULT_KILL_AT=point, CLIENTHUB_JOB_LEASE_SECONDS="1")
    return subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def telegram(hub: AppHub) -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token=TG_TOKEN)
    with serve(fake.app) as api:
        secrets = {"token": TG_TOKEN, "webhook_secret": TG_SECRET}
        _source(hub, "telegram", "shopbot", {"api_url": api}, secrets)
        yield fake


def _tg_customer_writes(hub: AppHub, fake: FakeTelegram) -> None:
    update = _event("telegram", "message__private_text")
    assert fake.deliver(f"{hub.url}/hooks/telegram/shopbot", update, secret=TG_SECRET).statuses == [
        200
    ]
    hub.drain()


class TestTelegram:
    def test_reply_reaches_the_chat_and_a_blocked_bot_is_shown_to_the_operator(
        self, hub, telegram
    ) -> None:
        _tg_customer_writes(hub, telegram)
        [appeal] = hub.appeals()
        hub.operator_says(appeal.b24_chat_id, "Заказ 4512 приедет завтра")
        hub.drain()
        assert [(m["chat_id"], m["text"]) for m in telegram.sent] == [
            (1111111, f"{SIGNED}Заказ 4512 приедет завтра")
        ]
        telegram.chats_blocked.add(1111111)
        hub.operator_says(appeal.b24_chat_id, "Ещё вопрос: удобно ли в 10?")
        hub.drain()
        assert len(telegram.sent) == 1
        first, refused = hub.replies()
        assert (first.state, refused.state) == ("sent", "failed")
        assert "blocked" in (refused.last_error or "")
        [appeal] = hub.appeals()
        assert "blocked" in (appeal.reply_error or "")
        chat = hub.chat_of(appeal)
        [system] = [m for m in chat["messages"] if m["system"]]
        assert "НЕ доставлен" in system["text"] and "blocked" in system["text"]
        [dead] = [j for j in hub.jobs("reply.send") if j.state == JobState.dead]
        assert dead.payload == {"reply_id": refused.id}

    @SQLITE_ONLY
    def test_a_worker_killed_after_the_send_is_not_resent_blindly(self, hub, telegram) -> None:
        _tg_customer_writes(hub, telegram)
        [appeal] = hub.appeals()
        hub.operator_says(appeal.b24_chat_id, "Проверим и перезвоним")
        proc = _worker_killed_at(hub, "reply.send:after_send")
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        time.sleep(1.2)  # the dead worker's lease runs out
        hub.drain()
        # Within the grace the first attempt may still be in flight (a stalled worker): wait.
        [reply] = hub.replies()
        assert reply.state == "sending"
        [job] = hub.jobs("reply.send")
        assert job.state == JobState.queued and "in flight" in (job.last_error or "")
        _grace_passed(hub)
        hub.drain()
        assert len(telegram.sent) == 1  # Telegram has no idempotency key: no second send
        [reply] = hub.replies()
        assert reply.state == "uncertain"
        [system] = [m for m in hub.chat_of(appeal)["messages"] if m["system"]]
        assert "не удалось подтвердить" in system["text"]
        [job] = hub.jobs("reply.send")
        assert job.state == JobState.dead  # a human decides: retrying it sends again
        with session_scope(hub.engine) as s:
            assert queue.retry(s, job_ids=[job.id]) == 1
        hub.drain()
        assert len(telegram.sent) == 2
        [reply] = hub.replies()
        assert reply.state == "sent"

    @SQLITE_ONLY
    def test_a_delivery_once_recorded_survives_the_loss_of_the_jobs_transaction(
        self, hub, telegram
    ) -> None:
        """Killed after the handler, before the job's own commit: Telegram confirmed the
        message and ClientHub had recorded it, so the rerun neither sends again nor doubts."""
        _tg_customer_writes(hub, telegram)
        [appeal] = hub.appeals()
        hub.operator_says(appeal.b24_chat_id, "Проверим и перезвоним")
        proc = _worker_killed_at(hub, "reply.send:after_handler")
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        [reply] = hub.replies()
        assert reply.state == "sent" and reply.platform_message_id
        [job] = hub.jobs("reply.send")
        assert job.state == JobState.running  # the job's own commit never happened
        time.sleep(1.2)
        hub.drain()
        assert len(telegram.sent) == 1
        [reply] = hub.replies()
        assert reply.state == "sent" and reply.last_error is None
        assert not [m for m in hub.chat_of(appeal)["messages"] if m["system"]]
        [job] = hub.jobs("reply.send")
        assert job.state == JobState.done

    def test_a_database_error_while_recording_the_delivery_is_retried_not_doubted(
        self, hub, telegram
    ) -> None:
        """A deadlock on the appeal row while the sent reply is recorded: the record is tried
        again in place; the reply neither goes twice nor becomes ``uncertain``."""
        _tg_customer_writes(hub, telegram)
        [appeal] = hub.appeals()
        hub.operator_says(appeal.b24_chat_id, "Проверим и перезвоним")
        failed: list[str] = []

        def deadlock_once(conn, cursor, statement, params, context, executemany) -> None:
            if (
                not failed
                and statement.startswith("UPDATE appeals")
                and "first_reply_at" in statement
            ):
                failed.append(statement)
                raise OperationalError(statement, params, Exception("deadlock detected"))

        event.listen(hub.engine, "before_cursor_execute", deadlock_once)
        try:
            hub.drain()
        finally:
            event.remove(hub.engine, "before_cursor_execute", deadlock_once)
        assert failed, "the fault was never injected"
        assert len(telegram.sent) == 1
        [reply] = hub.replies()
        assert reply.state == "sent" and reply.last_error is None
        [appeal] = hub.appeals()
        assert appeal.first_reply_at is not None
        assert [j.state for j in hub.jobs("reply.send")] == [JobState.done]


class TestOk:
    @SQLITE_ONLY
    def test_reply_reaches_the_ok_chat(self, hub) -> None:
        fake = FakeOk(token=OK_TOKEN)
        with serve(fake.app) as api:
            secrets = {"token": OK_TOKEN, "url_token": OK_URL_TOKEN}
            _source(hub, "ok", "group", {"api_url": api}, secrets)
            url = f"{hub.url}/hooks/ok/group?token={OK_URL_TOKEN}"
            assert fake.deliver(url, _event("ok", "MESSAGE_CREATED__text")).statuses == [200]
            hub.drain()
            [appeal] = hub.appeals()
            hub.operator_says(appeal.b24_chat_id, "Спасибо, передали в магазин")
            hub.drain()
        assert [m["text"] for m in fake.sent] == [f"{SIGNED}Спасибо, передали в магазин"]
        [reply] = hub.replies()
        assert reply.state == "sent"
        [answer] = _messages(hub.chat_of(appeal), "out")
        assert answer["status"] == "delivered"


def _deal_card_reply(hub: AppHub, deal_id: int, text: str) -> str:
    opened = hub.sb(
        "/_sandbox/placements/open",
        placement="CRM_DEAL_DETAIL_ACTIVITY",
        options={"ID": str(deal_id)},
    )
    assert opened["status"] == 200, opened["html"][:300]
    token = re.search(r'name="token" value="([^"]+)"', opened["html"])
    assert token, opened["html"][:500]
    r = httpx.post(
        f"{hub.url}/bitrix24/placement/deal/reply",
        data={"token": token.group(1), "text": text},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    hub.drain()
    return opened["html"]


def _timeline(hub: AppHub, deal_id: int) -> list[str]:
    return [c["COMMENT"] for c in hub.portal.store.comments("deal", deal_id)]


class TestEmail:
    @SQLITE_ONLY
    def test_a_deal_card_reply_goes_out_by_smtp_and_into_the_timeline(self, hub) -> None:
        sink = SmtpSink()
        for smtp in sink.serve():
            config = {
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "from_address": "support@retail-sample.ru",
            }
            _source(hub, "email", "support", config, {})
            raw = (FIXTURES / "email" / "message__reply_with_quote.eml").read_bytes()
            event = IncomingEvent(
                channel="email",
                source="support",
                external_id="<CAB7x-reply-2@mail.example.ru>",
                event_type="message",
                headers={},
                content_type="message/rfc822",
                body=raw,
            )
            with session_scope(hub.engine) as s:
                store_event(s.connection(), event)
            hub.drain()
            [appeal] = hub.appeals()
            assert appeal.crm_entity_id and appeal.b24_chat_id is None  # no chat for e-mail
            html = _deal_card_reply(hub, appeal.crm_entity_id, "Анна, подходите в любой день.")
            assert "Чек нашла" in html  # the card shows the conversation
            [out] = smtp.messages
        assert out["To"] == "anna.petrova@example.ru"
        assert out["In-Reply-To"] == "<CAB7x-reply-2@mail.example.ru>"
        assert out.get_content().strip() == "Анна, подходите в любой день."
        [reply] = hub.replies()
        assert (reply.origin, reply.state) == ("deal_card", "sent")
        assert any("Ответ клиенту отправлен" in c for c in _timeline(hub, appeal.crm_entity_id))
        [appeal] = hub.appeals()
        assert appeal.first_reply_at is not None


class TestTwoGis:
    @SQLITE_ONLY
    def test_a_deal_card_reply_becomes_the_official_answer(self, hub, monkeypatch) -> None:
        monkeypatch.setenv("CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API", "true")
        get_settings.cache_clear()
        TwoGisClient._tokens.clear()
        twogis_poller.SCHEDULE._due.clear()
        branch = "70000001462117106"  # store 1001, Moscow
        fake = FakeTwoGis()
        fake.add_review(
            branch, "555", rating=2, text="Долго ждал на кассе", created="2024-06-01T10:00:00+03:00"
        )
        with serve(fake.app) as api:
            config = {"api_url": api, "interval_seconds": 0, "rate_per_second": 1000}
            secrets = {"login": fake.login, "password": fake.password}
            _source(hub, "twogis", branch, config, secrets)
            source = sources_store.SourceConfig("twogis", branch, config, secrets)
            assert twogis_poller.poll_source(hub.engine, source) == 1
            hub.drain()
            [appeal] = hub.appeals()
            _deal_card_reply(hub, appeal.crm_entity_id, "Простите за ожидание, разберёмся.")
        assert [(a["reviewId"], a["text"], a["isOfficialAnswer"]) for a in fake.answers] == [
            ("555", "Простите за ожидание, разберёмся.", True)
        ]
        [reply] = hub.replies()
        assert reply.state == "sent"
