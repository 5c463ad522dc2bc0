"""Yandex Business reviews: one test per recorded envelope, then the cabinet poller and the
business answer against the fake cabinet over real HTTP (hub/fakes/yandex.py)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from connectors import get_connector
from connectors.base import Author, OutgoingReply, RawEventView, SourceConfig
from connectors.platform_http import RetryPolicy
from connectors.yandex import poller
from connectors.yandex.client import YandexBusinessClient
from connectors.yandex.parse import EVENT_HANDLERS
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.yandex import FakeYandex
from hub.models import Appeal, RawEvent
from hub.settings import get_settings
from hub.storage import poller_cursors
from tests.connectors.helpers import (
    RECEIVED,
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
)
from tests.helpers import count, drain

ORG = "5452197270"  # store 1001, Moscow, in routing_rules/sample/stores.csv


def parse(name: str) -> list:
    return get_connector("yandex").parse(
        RawEventView(
            id=3,
            channel="yandex",
            source=ORG,
            external_id="review:x",
            event_type=name.split("__")[0],
            headers={},
            content_type="application/json",
            body=fixture_bytes("yandex", name),
            received_at=RECEIVED,
        )
    )


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    assert fixtures_without_tests("yandex", sys.modules[__name__]) == []
    assert handlers_without_fixtures("yandex", EVENT_HANDLERS) == ["notification_email"]


def test_review__new() -> None:
    [a] = parse("review__new")
    assert (a.kind, a.thread_key, a.rating, a.is_edit) == ("review", "review:Vr7x9k2LmQp", 1, False)
    assert a.text == "Просрочка на полке с молочкой, кефир до 28 мая. Уже второй раз."
    assert a.author == Author(name="Марина С.", platform_id="4400123")
    assert a.received_at == datetime(2024, 6, 1, 14, 0, tzinfo=UTC)  # milliseconds read right
    assert a.attachments == [
        {
            "type": "photo",
            "url": "https://avatars.mds.yandex.net/get-altay/1234567/2a00000190aa/orig",
        }
    ]
    assert a.fields == {
        "platform": "yandex",
        "org_id": ORG,
        "url": f"https://yandex.ru/maps/org/{ORG}/reviews/",
        "review_id": "Vr7x9k2LmQp",
        "review_status": "new",
        "low_rating": True,
    }


def test_review_edited__answered() -> None:
    [a] = parse("review_edited__answered")
    assert (a.rating, a.is_edit, "low_rating" in a.fields) == (4, True, False)
    assert a.received_at == datetime(2024, 6, 1, 14, 0, tzinfo=UTC)  # seconds read right
    assert a.text == "[Отзыв изменён автором.]\nКефир убрали, спасибо, что отреагировали."
    assert a.fields["business_answer"] == "Марина, спасибо! Товар снят с продажи."


def test_review_deleted__removed() -> None:
    [a] = parse("review_deleted__removed")
    assert (a.thread_key, a.rating, a.author.name) == ("review:Qa1b2c3d4e5", 2, "Пётр")
    assert a.fields["review_status"] == "deleted"


@pytest.fixture
def cabinet(engine, monkeypatch) -> Iterator[tuple[FakeYandex, SourceConfig]]:
    monkeypatch.setenv("CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API", "true")
    get_settings.cache_clear()
    poller.SCHEDULE._due.clear()
    fake = FakeYandex()
    with serve(fake.app) as url:
        config = {"api_url": url, "interval_seconds": 0, "rate_per_second": 1000}
        secrets = {"session_id": fake.session_id, "session_id2": fake.session_id2}
        yield fake, SourceConfig("yandex", ORG, config, secrets)
    get_settings.cache_clear()


def _seed(fake: FakeYandex, n: int) -> None:
    for i in range(1, n + 1):
        fake.add_review(
            ORG, f"y{i:03}", rating=i % 5 + 1, text=f"Отзыв {i}", created=1717000000 + i
        )


def _externals(engine) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        return sorted(s.execute(select(RawEvent.external_id)).scalars())


def _client(source: SourceConfig) -> YandexBusinessClient:
    return YandexBusinessClient(
        session_id=source.secrets["session_id"],
        session_id2=source.secrets["session_id2"],
        base_url=source.config["api_url"],
        rate_per_second=1000,
        retry=RetryPolicy(attempts=1),
    )


class TestCabinetPoller:
    def test_new_edited_and_removed_reviews(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 25)  # two pages of 20
        assert poller.poll_source(engine, source) == 25
        assert poller.poll_source(engine, source) == 0
        fake.edit("y025", text="Стало лучше", rating=5)
        fake.remove("y024")  # hidden by moderation or deleted: the cabinet just drops it
        assert poller.poll_source(engine, source) == 2
        tail = [e for e in _externals(engine) if e.count(":") > 1]
        assert len(tail) == 2 and "review:y024:deleted" in tail
        assert any(e.startswith("review:y025:edit:") for e in tail)
        drain(engine)
        assert count(engine, Appeal, Appeal.kind == "review") == 27

    @pytest.mark.parametrize("how", ["401", "488", "redirect"])
    def test_an_expired_session_is_a_clear_alert_every_tick(
        self, engine, cabinet, caplog, how
    ) -> None:
        fake, source = cabinet
        _seed(fake, 1)
        fake.expired = how
        with caplog.at_level(logging.ERROR, logger="clienthub.reviews"):
            assert poller.poll_source(engine, source) == 0
            poller.SCHEDULE._due.clear()
            assert poller.poll_source(engine, source) == 0  # still trying, still alerting
        alerts = [r.message for r in caplog.records if r.levelno == logging.ERROR]
        assert len(alerts) == 2 and "log in to Yandex Business again" in alerts[0]
        error = poller_cursors.get(engine, poller.cursor_name(source)).last_error
        assert error.startswith(f"ALERT: Yandex refused the session for {ORG}")
        assert fake.session_id not in caplog.text
        fake.expired = None
        poller.SCHEDULE._due.clear()
        assert poller.poll_source(engine, source) == 1

    def test_missing_cookies_are_an_alert_too(self, engine, cabinet) -> None:
        _, source = cabinet
        bare = SourceConfig("yandex", ORG, source.config, {"session_id": "only-one"})
        assert poller.poll_source(engine, bare) == 0
        assert (
            "no session cookies" in poller_cursors.get(engine, poller.cursor_name(bare)).last_error
        )

    def test_a_rate_limit_and_a_restart_mid_scan_lose_nothing(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 45)  # three pages
        fake.fail_calls = {2: 500}
        poller.poll_source(engine, source, client=_client(source))
        assert len(_externals(engine)) == 20  # page 1 committed with its cursor
        assert poller_cursors.get(engine, poller.cursor_name(source)).cursor["scan"]["next"] == 2
        fake.fail_calls = {fake.calls + 1: 429}
        poller.SCHEDULE._due.clear()
        # A short Retry-After (1 s) is waited out within the call; the scan resumes on page 2.
        assert poller.poll_source(engine, source) == 25
        assert _externals(engine) == sorted(f"review:y{i:03}" for i in range(1, 46))


class TestBusinessAnswer:
    def test_the_answer_is_posted_with_fresh_csrf_tokens_and_once(self, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 30)
        reply = OutgoingReply("r9", "Спасибо!", "review:y002", None, None, {"review_id": "y002"})
        connector = get_connector("yandex")
        connector.send_reply(reply, source)  # y002 is on the second page
        assert connector.send_reply(reply, source).detail == "already there"
        assert fake.answers == [{"reviewId": "y002", "text": "Спасибо!"}]
