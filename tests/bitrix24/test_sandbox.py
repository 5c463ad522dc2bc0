"""The sandbox portal's own behaviour: URL formats, auth, pagination, limits, faults, the log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

FIXTURES = Path(__file__).parent / "fixtures"


def post(sandbox, path: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{sandbox.url}{path}", json=body or {})


def test_seeded_from_routing_rules_sample(sandbox):
    cats = post(sandbox, "/rest/1/sandbox/crm.category.list", {"entityTypeId": 2}).json()
    assert [c["id"] for c in cats["result"]["categories"]] == [0, 1, 2, 3, 4, 5, 6]
    stages = post(
        sandbox, "/rest/1/sandbox/crm.status.list.json", {"filter": {"ENTITY_ID": "DEAL_STAGE_2"}}
    ).json()["result"]
    assert [s["STATUS_ID"] for s in stages] == [
        "C2:NEW", "C2:UC_INTERVIEW", "C2:UC_OVERDUE", "C2:WON", "C2:LOSE"
    ]  # fmt: skip
    users = post(sandbox, "/rest/1/sandbox/user.get", {"FILTER": {"ID": 12}}).json()["result"]
    assert users[0]["LAST_NAME"] == "Поздняков"
    dept = post(sandbox, "/rest/1/sandbox/department.get", {"ID": users[0]["UF_DEPARTMENT"][0]})
    assert dept.json()["result"][0]["NAME"] == "Горячая линия"


def test_wrong_webhook_code_and_missing_token(sandbox):
    bad = post(sandbox, "/rest/1/wrong/user.current")
    assert (bad.status_code, bad.json()["error"]) == (401, "INVALID_CREDENTIALS")
    no_auth = post(sandbox, "/rest/user.current")
    assert (no_auth.status_code, no_auth.json()["error"]) == (401, "NO_AUTH_FOUND")


def test_app_only_methods_need_oauth(sandbox):
    expected = json.loads(
        (FIXTURES / "imconnector.register.error-403-WRONG_AUTH_TYPE.json").read_text()
    )
    hook = post(
        sandbox,
        "/rest/1/sandbox/telephony.externalCall.register",
        {"USER_ID": 12, "PHONE_NUMBER": "+79161234567", "TYPE": 2},
    )
    assert (hook.status_code, hook.json()) == (403, expected)
    auth = post(sandbox, "/_sandbox/apps", {"client_id": "local.x", "client_secret": "s"}).json()
    token = auth["auth"]["access_token"]
    call = {
        "USER_ID": 12,
        "PHONE_NUMBER": "+79161234567",
        "TYPE": 2,
        "EXTERNAL_CALL_ID": "c1",
        "auth": token,
    }
    registered = post(sandbox, "/rest/telephony.externalCall.register", call).json()["result"]
    again = post(sandbox, "/rest/telephony.externalCall.register", call).json()["result"]
    assert registered["CALL_ID"] == again["CALL_ID"]  # a repeat within 30 min is the same call
    early = post(
        sandbox,
        "/rest/telephony.externalCall.attachRecord",
        {"CALL_ID": registered["CALL_ID"], "FILENAME": "a.mp3", "auth": token},
    )
    assert "not finished yet" in early.json()["error_description"]
    done = post(
        sandbox,
        "/rest/telephony.externalCall.finish",
        {"CALL_ID": registered["CALL_ID"], "USER_ID": 12, "DURATION": 42, "auth": token},
    )
    assert done.json()["result"]["CALL_DURATION"] == 42
    record = post(
        sandbox,
        "/rest/telephony.externalCall.attachRecord",
        {
            "CALL_ID": registered["CALL_ID"],
            "FILENAME": "a.mp3",
            # The portal downloads a RECORD_URL at once (sandbox/telephony.py): send the content.
            "FILE_CONTENT": "SUQzAwAAAAAAAA==",
            "auth": token,
        },
    )
    assert "FILE_ID" in record.json()["result"]


def test_pagination_start_next_total_and_fast_path(sandbox):
    from hub.bitrix24.batch import Batch
    from tests.bitrix24.conftest import make_client

    with make_client(sandbox.webhook_url) as client:
        for chunk in range(3):
            batch = Batch()
            for i in range(40):
                batch.add(
                    f"c{i}",
                    "crm.item.add",
                    {"entityTypeId": 3, "fields": {"name": f"n{chunk}-{i}"}},
                )
            assert client.batch(batch).errors == {}
        first = client.call("crm.item.list", {"entityTypeId": 3, "select": ["id"]})
        assert (len(first.result["items"]), first.next, first.total) == (50, 50, 120)
        assert (
            len(list(client.list_all("crm.item.list", {"entityTypeId": 3}, items_key="items")))
            == 120
        )
        fast = list(
            client.list_fast("crm.item.list", {"entityTypeId": 3}, id_field="id", items_key="items")
        )
        assert [i["id"] for i in fast] == sorted(i["id"] for i in fast) and len(fast) == 120


def test_batch_limits(sandbox):
    too_long = {"cmd": {str(i): "user.current" for i in range(51)}}
    answer = post(sandbox, "/rest/1/sandbox/batch", too_long)
    assert answer.json()["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    nested = post(sandbox, "/rest/1/sandbox/batch", {"cmd": {"a": "batch?cmd[b]=user.current"}})
    assert nested.json()["result"]["result_error"]["a"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


def test_rate_limit_answers_query_limit_exceeded(sandbox):
    expected = json.loads((FIXTURES / "error.QUERY_LIMIT_EXCEEDED.json").read_text())
    sandbox.faults(rate={"burst": 3, "per_second": 0.01})
    answers = [post(sandbox, "/rest/1/sandbox/user.current") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 503, 503]
    assert answers[-1].json() == expected


def test_faults_calls_and_reset(sandbox):
    sandbox.faults(outage=True)
    down = post(sandbox, "/rest/1/sandbox/user.current")
    assert down.status_code == 503 and "html" in down.headers["content-type"]
    sandbox.faults(outage=False, operation_limit={"method": "user.current", "count": 1})
    limited = post(sandbox, "/rest/1/sandbox/user.current")
    assert (limited.status_code, limited.json()["error"]) == (429, "OPERATION_TIME_LIMIT")
    assert post(sandbox, "/rest/1/sandbox/user.current").status_code == 200
    calls = sandbox.calls(top=True)
    assert [(c["method"], c["status"]) for c in calls] == [
        ("user.current", 503),
        ("user.current", 429),
        ("user.current", 200),
    ]
    assert calls[0]["at"] > 0
    post(sandbox, "/rest/1/sandbox/crm.item.add", {"entityTypeId": 3, "fields": {"name": "x"}})
    assert sandbox.state()["contacts"] == 1
    post(sandbox, "/_sandbox/reset")
    assert sandbox.state()["contacts"] == 0 and sandbox.calls() == []


def test_the_auth_token_is_not_recorded(sandbox):
    auth = post(sandbox, "/_sandbox/apps", {"client_id": "local.y", "client_secret": "s"}).json()
    token = auth["auth"]["access_token"]
    post(sandbox, "/rest/user.current", {"auth": token})
    assert token not in json.dumps(sandbox.calls())


def test_mounted_at_sandbox_as_clienthub_run_does(engine, tmp_path):
    """`clienthub run` with no portal configured: the sandbox at /sandbox, the client pointed at
    it by the factory."""
    from fastapi import FastAPI

    from hub.bitrix24.factory import client_from_settings, portal_mode
    from hub.bitrix24.sandbox import sandbox_from_settings
    from hub.settings import get_settings
    from tests.conftest import LiveServer

    settings = get_settings().model_copy(
        update={"sandbox_enabled": True, "sandbox_db": tmp_path / "mounted.db"}
    )
    app = FastAPI()
    app.get("/healthz")(lambda: {"status": "ok"})
    app.mount("/sandbox", sandbox_from_settings(settings))
    with LiveServer(app) as server:
        settings = settings.model_copy(update={"host": "127.0.0.1", "port": server.port})
        assert portal_mode(settings) == "sandbox"
        with client_from_settings(settings, engine) as client:
            assert client.call("user.current").result["ID"] == "1"
            apps = httpx.post(
                f"{server.url}/sandbox/_sandbox/apps",
                json={"client_id": "local.z", "client_secret": "s"},
            ).json()
        assert apps["auth"]["client_endpoint"] == f"{server.url}/sandbox/rest/"
