"""An operator's answer whose send times out after Telegram (the fake) already got it: the
customer gets it once, and the reply is ``uncertain`` at once — "возможно доставлено: проверьте
в канале" in its error, a system message in the Open Lines chat, the job in the dead letters —
instead of being sent again by the client or by the job queue. Retrying the dead job is the
human decision to send again."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hub import queue
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.models import JobState
from hub.storage import sources as sources_store
from tests.bitrix24.openlines_env import (  # noqa: F401 - fixtures
    AppHub,
    app_hub,
    seeded_portal,
)
from tests.connectors.asgi_faults import Faults
from tests.connectors.helpers import fixture_bytes

TG_TOKEN, TG_SECRET = "777:ambiguous-bot-token", "ambiguous_webhook_secret"
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def hub(app_hub: AppHub) -> AppHub:  # noqa: F811
    app_hub.install()
    app_hub.activate_line(1)
    return app_hub


@pytest.fixture
def telegram(hub: AppHub) -> Iterator[tuple[FakeTelegram, Faults]]:
    fake = FakeTelegram(token=TG_TOKEN)
    faults = Faults(fake.app, "/sendMessage")
    with serve(faults) as api:  # type: ignore[arg-type]
        with session_scope(hub.engine) as s:
            sources_store.upsert(
                s, channel="telegram", source="shopbot",
                config={"api_url": api, "timeout_seconds": 0.5},
                secrets={"token": TG_TOKEN, "webhook_secret": TG_SECRET},
            )  # fmt: skip
        yield fake, faults


def test_a_timeout_after_telegram_got_the_reply_leaves_it_to_a_human(hub, telegram) -> None:
    fake, faults = telegram
    update = json.loads(fixture_bytes("telegram", "message__private_text"))
    url = f"{hub.url}/hooks/telegram/shopbot"
    assert fake.deliver(url, update, secret=TG_SECRET).statuses == [200]
    hub.drain()
    [appeal] = hub.appeals()
    faults.plan.append(("late", 2.0))  # Telegram sends it, the answer never comes back in time
    hub.operator_says(appeal.b24_chat_id, "Заказ 4512 приедет завтра")
    hub.drain()

    assert len(fake.sent) == 1 and faults.seen == 1  # once: no retry in the client or the queue
    [reply] = hub.replies()
    assert reply.state == "uncertain"
    assert (reply.last_error or "").startswith("возможно доставлено: проверьте в канале")
    assert "ReadTimeout" in (reply.last_error or "")
    [appeal] = hub.appeals()
    assert "возможно доставлено" in (appeal.reply_error or "")
    [system] = [m for m in hub.chat_of(appeal)["messages"] if m["system"]]
    assert "не удалось подтвердить" in system["text"]
    assert "проверьте в канале" in system["text"]
    [job] = hub.jobs("reply.send")
    assert job.state == JobState.dead

    with session_scope(hub.engine) as s:  # staff checked: not there, send again
        assert queue.retry(s, job_ids=[job.id]) == 1
    hub.drain()
    assert len(fake.sent) == 2
    [reply] = hub.replies()
    assert reply.state == "sent"
