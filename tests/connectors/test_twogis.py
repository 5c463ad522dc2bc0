"""2GIS reviews: one test per recorded envelope, then the cabinet poller and the official answer
against the fake cabinet over real HTTP (hub/fakes/twogis.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from connectors import get_connector
from connectors.base import Author, OutgoingReply, RawEventView, SourceConfig
from connectors.platform_http import PermanentError
from connectors.twogis import poller
from connectors.twogis.client import TwoGisClient
from connectors.twogis.parse import EVENT_HANDLERS
from hub.db import session_scope
from hub.fakes.serve import serve
from hub.fakes.twogis import FakeTwoGis
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

BRANCH = "70000001462117106"  # store 1001, Moscow, in routing_rules/sample/stores.csv
MSK = timezone(timedelta(hours=3))


def parse(name: str, **config: object) -> list:
    return get_connector("twogis").parse(
        RawEventView(
            id=7,
            channel="twogis",
            source=BRANCH,
            external_id="review:test",
            event_type=name.split("__")[0],
            headers={},
            content_type="application/json",
            body=fixture_bytes("twogis", name),
            received_at=RECEIVED,
            source_config=config,
        )
    )


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    assert fixtures_without_tests("twogis", sys.modules[__name__]) == []
    # notification_email bodies are e-mails: tests/connectors/test_email.py covers them.
    assert handlers_without_fixtures("twogis", EVENT_HANDLERS) == ["notification_email"]


def test_review__new() -> None:
    [a] = parse("review__new")
    assert (a.kind, a.external_id, a.thread_key, a.rating, a.is_edit) == (
        "review", "review:test", "review:148823911", 2, False,
    )  # fmt: skip
    assert a.text == "Кассир нагрубила, очередь 20 минут."
    assert a.author == Author(name="Ольга К.", platform_id="u5521")
    assert a.received_at == datetime(2024, 6, 1, 18, 20, 11, tzinfo=MSK)
    assert a.attachments == [
        {
            "type": "photo",
            "url": "https://i2.photo.2gis.com/images/branch/0/30258560082478106_a1b2.jpg",
        }
    ]
    assert a.fields == {
        "platform": "2gis",
        "branch_id": BRANCH,
        "url": f"https://2gis.ru/firm/{BRANCH}/tab/reviews",
        "review_id": "148823911",
        "review_status": "new",
        "low_rating": True,
    }


def test_review_edited__rating_up() -> None:
    [a] = parse("review_edited__rating_up")
    assert (a.thread_key, a.rating, a.is_edit) == ("review:148823911", 4, True)
    assert a.text == "[Отзыв изменён автором.]\nКассир извинилась, вопрос решили. Спасибо."
    assert a.received_at == datetime(2024, 6, 3, 9, 0, tzinfo=MSK)
    assert a.fields["review_status"] == "edited" and "low_rating" not in a.fields


def test_review_hidden__moderation() -> None:
    [a] = parse("review_hidden__moderation")
    assert a.is_edit and a.rating == 1
    assert a.text == "[Отзыв скрыт площадкой: Нарушает правила публикации.]\nНе ходите сюда!!!"
    assert a.fields["hidden"] is True
    assert a.fields["hiding_reason"] == "Нарушает правила публикации"
    assert a.fields["review_status"] == "hidden"


def test_review_deleted__gone() -> None:
    [a] = parse("review_deleted__gone")
    assert (a.thread_key, a.rating, a.author.name, a.is_edit) == (
        "review:148823913",
        3,
        "Игорь",
        True,
    )
    assert a.text.startswith("[Отзыв больше не показывается")
    assert a.fields["review_status"] == "deleted"


def test_low_rating_threshold_is_configurable_per_source() -> None:
    [a] = parse("review__new", low_rating_max=1)
    assert "low_rating" not in a.fields


# --- the cabinet poller over HTTP ---------------------------------------------------------------


@pytest.fixture
def cabinet(engine, monkeypatch) -> Iterator[tuple[FakeTwoGis, SourceConfig]]:
    monkeypatch.setenv("CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API", "true")
    get_settings.cache_clear()
    TwoGisClient._tokens.clear()
    poller.SCHEDULE._due.clear()
    fake = FakeTwoGis()
    with serve(fake.app) as url:
        config = {"api_url": url, "interval_seconds": 0, "page_size": 2, "rate_per_second": 1000}
        secrets = {"login": fake.login, "password": fake.password}
        yield fake, SourceConfig("twogis", BRANCH, config, secrets)
    get_settings.cache_clear()


def _seed(fake: FakeTwoGis, n: int) -> None:
    for i in range(1, n + 1):
        fake.add_review(
            BRANCH,
            str(1000 + i),
            rating=i % 5 + 1,
            text=f"Отзыв {i}",
            created=f"2024-06-0{i}T10:00:00+03:00",
        )


def _externals(engine) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        return sorted(s.execute(select(RawEvent.external_id)).scalars())


class TestCabinetPoller:
    def test_new_reviews_across_pages_are_stored_once(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 5)
        assert poller.poll_source(engine, source) == 5
        assert poller.poll_source(engine, source) == 0  # the second scan sees nothing new
        assert _externals(engine) == [f"review:{1000 + i}" for i in range(1, 6)]
        drain(engine)
        assert count(engine, Appeal, Appeal.kind == "review") == 5
        assert fake.logins == 1  # one token serves every call

    def test_edited_hidden_and_deleted_reviews_become_follow_ups(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 4)
        poller.poll_source(engine, source)
        fake.edit("1001", text="Исправили, спасибо", rating=5)
        fake.hide("1002")
        fake.delete("1003")
        assert poller.poll_source(engine, source) == 3
        new = [e for e in _externals(engine) if e.count(":") > 1]
        fp = [e for e in new if ":edit:" in e][0].rsplit(":", 1)[1]
        hidden_fp = [e for e in new if ":hidden:" in e][0].rsplit(":", 1)[1]
        assert sorted(new) == sorted(
            [f"review:1001:edit:{fp}", f"review:1002:hidden:{hidden_fp}", "review:1003:deleted"]
        )
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            follow = s.execute(select(Appeal).where(Appeal.is_edit)).scalars().all()
        assert {a.thread_key for a in follow} == {"review:1001", "review:1002", "review:1003"}
        assert poller.poll_source(engine, source) == 0

    def test_an_expired_token_is_renewed_by_logging_in_again(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 1)
        poller.poll_source(engine, source)
        fake.expire_tokens()
        fake.add_review(BRANCH, "2001", rating=5, text="Новый", created="2024-06-09T10:00:00+03:00")
        assert poller.poll_source(engine, source) == 1
        assert fake.logins == 2

    def test_a_refused_login_is_an_alert_and_polling_resumes_once_fixed(
        self, engine, cabinet, caplog
    ) -> None:
        fake, source = cabinet
        _seed(fake, 1)
        fake.password = "changed-by-someone"
        with caplog.at_level(logging.ERROR, logger="clienthub.reviews"):
            assert poller.poll_source(engine, source) == 0
        alert = poller_cursors.get(engine, poller.cursor_name(source)).last_error
        assert alert.startswith(f"ALERT: 2GIS refused the session for {BRANCH}: login refused")
        assert any("ALERT: 2GIS refused" in r.message for r in caplog.records)
        assert fake.password not in caplog.text and "changed-by-someone" not in alert
        fake.password = source.secrets["password"]
        assert poller.poll_source(engine, source) == 1
        assert poller_cursors.get(engine, poller.cursor_name(source)).last_error is None

    def test_a_rate_limit_defers_the_scan_without_losing_it(self, engine, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 3)
        fake.retry_after = "30"  # longer than a call waits: the scan is deferred
        fake.fail_review_calls = {1: 429}
        assert poller.poll_source(engine, source) == 0
        assert "HTTP 429" in poller_cursors.get(engine, poller.cursor_name(source)).last_error
        assert not poller.SCHEDULE.due(poller.cursor_name(source))
        poller.SCHEDULE._due.clear()
        fake.retry_after, fake.fail_review_calls = "0.05", {fake.review_calls + 2: 429}
        assert poller.poll_source(engine, source) == 3  # a short Retry-After is waited out
        assert len(_externals(engine)) == 3

    def test_a_restart_in_the_middle_of_pagination_resumes_on_the_next_page(
        self, engine, cabinet
    ) -> None:
        fake, source = cabinet
        _seed(fake, 5)  # pages of 2: 1005-1004, 1003-1002, 1001
        fake.fail_review_calls = {2: 500}  # the process "dies" on the second page
        poller.poll_source(engine, source, client=_client(source, attempts=1))
        assert "HTTP 500" in poller_cursors.get(engine, poller.cursor_name(source)).last_error
        assert _externals(engine) == ["review:1004", "review:1005"]
        scan = poller_cursors.get(engine, poller.cursor_name(source)).cursor["scan"]
        assert scan["pages"] == 1 and scan["next"] == "2024-06-04T10:00:00+03:00"
        TwoGisClient._tokens.clear()  # a new process: nothing in memory but the cursor
        assert poller.poll_source(engine, source) == 3
        assert _externals(engine) == [f"review:{1000 + i}" for i in range(1, 6)]

    def test_nothing_is_polled_while_the_unofficial_api_is_off(
        self, engine, cabinet, monkeypatch
    ) -> None:
        fake, source = cabinet
        _seed(fake, 1)
        monkeypatch.setenv("CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API", "false")
        get_settings.cache_clear()
        assert poller.poll_all(engine) == 0
        assert fake.review_calls == 0


def _client(source: SourceConfig, attempts: int) -> TwoGisClient:
    from connectors.platform_http import RetryPolicy

    return TwoGisClient(
        login=source.secrets["login"],
        password=source.secrets["password"],
        base_url=source.config["api_url"],
        rate_per_second=1000,
        retry=RetryPolicy(attempts=attempts),
    )


class TestOfficialAnswer:
    def _reply(self, text: str) -> OutgoingReply:
        return OutgoingReply("r1", text, "review:1001", "review:1001", None, {"review_id": "1001"})

    def test_the_answer_is_posted_once_as_official(self, cabinet) -> None:
        fake, source = cabinet
        _seed(fake, 1)
        connector = get_connector("twogis")
        sent = connector.send_reply(self._reply("Спасибо за отзыв!"), source)
        again = connector.send_reply(self._reply("Спасибо за отзыв!"), source)  # a retried job
        assert [(a["reviewId"], a["text"], a["isOfficialAnswer"]) for a in fake.answers] == [
            ("1001", "Спасибо за отзыв!", True)
        ]
        assert sent.platform_message_id == again.platform_message_id

    def test_answering_is_refused_while_the_unofficial_api_is_off(
        self, cabinet, monkeypatch
    ) -> None:
        _, source = cabinet
        monkeypatch.setenv("CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API", "false")
        get_settings.cache_clear()
        with pytest.raises(PermanentError, match="unofficial cabinet API"):
            get_connector("twogis").send_reply(self._reply("x"), source)
