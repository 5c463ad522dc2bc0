"""The client's error mapping, retries and rate limiting, against recorded portal answers
(tests/bitrix24/fixtures are the official docs' payloads, see research/bitrix24.md §9)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from hub.bitrix24.batch import Batch, BatchResult
from hub.bitrix24.client import Bitrix24Client, RetryPolicy, WebhookAuth, is_read
from hub.bitrix24.errors import (
    AmbiguousResult,
    AuthError,
    MethodError,
    OperationTimeLimit,
    OverloadLimit,
    PortalUnavailable,
    QueryLimitExceeded,
    WrongAuthType,
)
from hub.bitrix24.ratelimit import MemoryRateLimiter

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://portal.example/rest/1/s3cr3tc0de/"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class Clock(list):
    """A fake clock: sleeping records the wait and moves time forward."""

    def __init__(self) -> None:
        super().__init__()
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def sleeps() -> Clock:
    return Clock()


def make(clock: Clock, **retry: float) -> Bitrix24Client:
    policy = {"attempts": 4, "base_seconds": 1.0, "max_delay_seconds": 8.0, **retry}
    return Bitrix24Client(
        WebhookAuth(BASE),
        timeout=5,
        limiter=MemoryRateLimiter(1000, 1000, now=clock.now, sleep=clock),
        retry=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=clock,
        now=clock.now,
        rng=random.Random(1),
    )


@pytest.fixture
def client(sleeps: Clock) -> Bitrix24Client:
    return make(sleeps)


class TestCall:
    @respx.mock
    def test_result_and_time(self, client):
        respx.post(BASE + "crm.deal.add").respond(200, json=fixture("crm.deal.add.json"))
        resp = client.call("crm.deal.add", {"fields": {"TITLE": "x"}})
        assert resp.result == 394
        assert resp.time["operating"] == 0

    @respx.mock
    def test_query_limit_is_retried_and_slows_the_limiter(self, client, sleeps):
        route = respx.post(BASE + "crm.item.add")
        route.side_effect = [
            httpx.Response(503, json=fixture("error.QUERY_LIMIT_EXCEEDED.json")),
            httpx.Response(200, json=fixture("crm.item.add.deal.json")),
        ]
        resp = client.call("crm.item.add", {"entityTypeId": 2, "fields": {}})
        assert resp.result["item"]["id"] == 342
        assert route.call_count == 2
        assert sleeps and 0.5 <= sleeps[0] <= 1.5  # the penalty, slept in acquire()

    @respx.mock
    def test_query_limit_gives_up_after_the_policy(self, client):
        respx.post(BASE + "user.get").respond(503, json=fixture("error.QUERY_LIMIT_EXCEEDED.json"))
        with pytest.raises(QueryLimitExceeded) as info:
            client.call("user.get")
        assert info.value.code == "QUERY_LIMIT_EXCEEDED" and info.value.transient

    @respx.mock
    def test_empty_error_code_is_a_method_error_with_the_description(self, client):
        respx.post(BASE + "crm.deal.add").respond(400, json=fixture("crm.deal.add.error-400.json"))
        with pytest.raises(MethodError) as info:
            client.call("crm.deal.add", {"fields": "x"})
        assert info.value.description == "Parameter 'fields' must be array."
        assert not info.value.transient

    @respx.mock
    def test_findbycomm_puts_its_text_in_error(self, client):
        respx.post(BASE + "crm.duplicate.findbycomm").respond(
            400, json=fixture("crm.duplicate.findbycomm.error-400.json")
        )
        with pytest.raises(MethodError) as info:
            client.call("crm.duplicate.findbycomm", {})
        assert info.value.code == "Communication type is not defined"

    @respx.mock
    def test_wrong_auth_type_is_typed(self, client):
        respx.post(BASE + "imconnector.register").respond(
            403, json=fixture("imconnector.register.error-403-WRONG_AUTH_TYPE.json")
        )
        with pytest.raises(WrongAuthType):
            client.call("imconnector.register", {})

    @respx.mock
    def test_overload_limit_is_not_retried_here(self, client):
        route = respx.post(BASE + "user.get").respond(
            503, json={"error": "OVERLOAD_LIMIT", "error_description": "blocked"}
        )
        with pytest.raises(OverloadLimit):
            client.call("user.get")
        assert route.call_count == 1

    @respx.mock
    def test_error_inside_http_200_is_still_an_error(self, client):
        respx.post(BASE + "user.get").respond(200, json=fixture("error.QUERY_LIMIT_EXCEEDED.json"))
        with pytest.raises(QueryLimitExceeded):
            client.call("user.get")

    @respx.mock
    def test_codeless_5xx_on_a_write_is_ambiguous_and_not_retried(self, client):
        route = respx.post(BASE + "crm.item.add").respond(502, text="<html>Bad gateway</html>")
        with pytest.raises(AmbiguousResult):
            client.call("crm.item.add", {})
        assert route.call_count == 1

    @respx.mock
    def test_read_timeout_on_a_read_is_retried(self, client):
        route = respx.post(BASE + "crm.item.list")
        route.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(200, json={"result": {}})]
        client.call("crm.item.list", {"entityTypeId": 2})
        assert route.call_count == 2

    @respx.mock
    def test_read_timeout_on_a_write_is_ambiguous(self, client):
        route = respx.post(BASE + "crm.timeline.comment.add")
        route.side_effect = httpx.ReadTimeout("slow")
        with pytest.raises(AmbiguousResult):
            client.call("crm.timeline.comment.add", {"fields": {}})
        assert route.call_count == 1

    @respx.mock
    def test_connection_refused_is_retried_even_for_a_write(self, client):
        route = respx.post(BASE + "crm.item.add")
        route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json={"result": 1})]
        assert client.call("crm.item.add", {}).result == 1

    @respx.mock
    def test_connection_refused_for_good_is_portal_unavailable(self, client):
        respx.post(BASE + "crm.item.add").side_effect = httpx.ConnectError("refused")
        with pytest.raises(PortalUnavailable):
            client.call("crm.item.add", {})

    @respx.mock
    def test_retry_after_header_is_honoured(self, client, sleeps):
        route = respx.post(BASE + "user.get")
        route.side_effect = [
            httpx.Response(502, text="busy", headers={"Retry-After": "7"}),
            httpx.Response(200, json={"result": []}),
        ]
        client.call("user.get")
        assert sleeps == [7.0]

    @respx.mock
    def test_operation_time_limit_waits_for_the_reset(self, client, sleeps):
        reset_at = sleeps.now().timestamp() + 3
        route = respx.post(BASE + "crm.duplicate.findbycomm")
        route.side_effect = [
            httpx.Response(200, json={"result": [], "time": {"operating_reset_at": reset_at}}),
            httpx.Response(429, json={"error": "OPERATION_TIME_LIMIT", "error_description": ""}),
            httpx.Response(200, json={"result": []}),
        ]
        client.call("crm.duplicate.findbycomm", {})
        client.call("crm.duplicate.findbycomm", {})
        assert route.call_count == 3
        assert sum(sleeps) >= 2.9  # blocked until operating_reset_at

    @respx.mock
    def test_operation_time_limit_past_the_budget_is_raised(self, sleeps):
        client = Bitrix24Client(
            WebhookAuth(BASE),
            limiter=MemoryRateLimiter(sleep=sleeps),
            retry=RetryPolicy(max_elapsed_seconds=5),
            sleep=sleeps,
        )
        respx.post(BASE + "user.get").respond(
            429, json={"error": "OPERATION_TIME_LIMIT", "error_description": "budget"}
        )
        with pytest.raises(OperationTimeLimit):
            client.call("user.get")

    @respx.mock
    def test_the_webhook_code_never_reaches_an_error(self, client):
        respx.post(BASE + "crm.item.add").respond(
            400, json={"error": "X", "error_description": f"bad url {BASE}crm.item.add"}
        )
        with pytest.raises(MethodError) as info:
            client.call("crm.item.add", {})
        assert "s3cr3tc0de" not in str(info.value)
        assert "s3cr3tc0de" not in repr(client.auth)


class TestBatch:
    def test_cmd_is_encoded_once_and_references_stay_readable(self):
        batch = Batch()
        c = batch.add("c", "crm.item.add", {"entityTypeId": 3, "fields": {"name": "A&B"}})
        from hub.bitrix24.batch import Ref

        batch.add("d", "crm.item.add", {"fields": {"contactId": Ref(c, ("item", "id"))}})
        cmd = batch.cmd()
        assert cmd["c"] == "crm.item.add?entityTypeId=3&fields[name]=A%26B"
        assert cmd["d"] == "crm.item.add?fields[contactId]=$result[c][item][id]"

    def test_at_most_fifty(self):
        batch = Batch()
        for i in range(50):
            batch.add(str(i), "user.get")
        with pytest.raises(ValueError):
            batch.add("51", "user.get")

    @pytest.mark.parametrize(
        ("name", "ok", "failed"),
        [
            ("batch.json", {"get_user", "get_department"}, set()),
            ("batch.error-halt0.json", set(), {"get_user", "get_department"}),
            ("batch.error-halt1.json", set(), {"get_user"}),
        ],
    )
    def test_recorded_responses(self, name, ok, failed):
        result = BatchResult.parse(fixture(name)["result"], {"get_user": "user.current"})
        assert set(result.results) == ok
        assert set(result.errors) == failed
        for error in result.errors.values():
            assert isinstance(error, AuthError) and error.code == "insufficient_scope"
        if ok:
            assert result.totals == {"get_department": 1}

    @respx.mock
    def test_a_writing_batch_is_never_retried_blindly(self, client):
        route = respx.post(BASE + "batch").mock(side_effect=httpx.ReadTimeout("slow"))
        batch = Batch()
        batch.add("a", "crm.item.add", {"entityTypeId": 2})
        with pytest.raises(AmbiguousResult):
            client.batch(batch)
        assert route.call_count == 1

    @respx.mock
    def test_a_reading_batch_is_retried(self, client):
        route = respx.post(BASE + "batch")
        route.side_effect = [
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=fixture("batch.json")),
        ]
        batch = Batch()
        batch.add("get_user", "user.current")
        batch.add("get_department", "department.get", {"ID": "$result[get_user][UF_DEPARTMENT][0]"})
        assert client.batch(batch).results["get_department"][0]["NAME"] == "DEMO"


class TestLists:
    @respx.mock
    def test_start_and_next(self, client):
        route = respx.post(BASE + "crm.status.list")
        route.side_effect = [
            httpx.Response(
                200, json={"result": [{"ID": i} for i in range(50)], "next": 50, "total": 60}
            ),
            httpx.Response(200, json={"result": [{"ID": i} for i in range(50, 60)], "total": 60}),
        ]
        assert len(list(client.list_all("crm.status.list"))) == 60
        assert json.loads(route.calls[1].request.content)["start"] == 50

    @respx.mock
    def test_id_fast_path(self, client):
        route = respx.post(BASE + "crm.item.list")
        route.side_effect = [
            httpx.Response(200, json={"result": {"items": [{"id": i} for i in range(1, 51)]}}),
            httpx.Response(200, json={"result": {"items": [{"id": 51}]}}),
        ]
        items = list(
            client.list_fast("crm.item.list", {"entityTypeId": 2}, id_field="id", items_key="items")
        )
        assert [i["id"] for i in items] == list(range(1, 52))
        second = json.loads(route.calls[1].request.content)
        assert second["start"] == -1 and second["filter"] == {">id": 50}
        assert second["order"] == {"id": "ASC"}


@pytest.mark.parametrize(
    ("method", "read"),
    [
        ("crm.item.list", True),
        ("user.get", True),
        ("crm.duplicate.findbycomm", True),
        ("crm.item.add", False),
        ("batch", False),
        ("telephony.externalCall.register", False),
    ],
)
def test_is_read(method, read):
    assert is_read(method) is read
