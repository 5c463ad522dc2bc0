"""The client against a portal: always the sandbox, and a real portal when
CLIENTHUB_B24_WEBHOOK_URL is set (so a user can check theirs). Entities created here carry
originatorId=clienthub-contract-test and are deleted at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from hub.bitrix24.batch import Batch, Ref
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.errors import MethodError, WrongAuthType
from tests.bitrix24.conftest import make_client

REAL = os.environ.get("CLIENTHUB_B24_WEBHOOK_URL", "")
ORIGIN = "clienthub-contract-test"


@pytest.fixture(params=["sandbox", "real"])
def portal(request: pytest.FixtureRequest) -> Iterator[Bitrix24Client]:
    if request.param == "real":
        if not REAL:
            pytest.skip(
                "no real portal: set CLIENTHUB_B24_WEBHOOK_URL to run the contract on yours"
            )
        with make_client(REAL, timeout=30.0) as client:
            yield client
        return
    sandbox = request.getfixturevalue("sandbox")
    with make_client(sandbox.webhook_url) as client:
        yield client


def test_who_am_i_and_pipelines(portal):
    assert int(portal.call("user.current").result["ID"]) > 0
    categories = portal.call("crm.category.list", {"entityTypeId": 2}).result["categories"]
    assert any(int(c["id"]) == 0 for c in categories)
    stages = portal.call("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}}).result
    assert stages and all(s["ENTITY_ID"] == "DEAL_STAGE" for s in stages)


def test_contact_deal_comment_in_one_batch_then_found_and_deleted(portal):
    origin = f"contract-{uuid.uuid4().hex[:10]}"
    phone = f"+7999{uuid.uuid4().int % 10_000_000:07d}"
    batch = Batch()
    batch.add(
        "c",
        "crm.item.add",
        {
            "entityTypeId": 3,
            "fields": {
                "name": "Контракт",
                "originatorId": ORIGIN,
                "originId": origin,
                "fm": [{"typeId": "PHONE", "valueType": "MOBILE", "value": phone}],
            },
        },
    )
    batch.add(
        "d",
        "crm.item.add",
        {
            "entityTypeId": 2,
            "fields": {
                "title": "ClientHub contract test",
                "contactId": Ref("c", ("item", "id")),
                "originatorId": ORIGIN,
                "originId": origin,
            },
        },
    )
    batch.add(
        "m",
        "crm.timeline.comment.add",
        {
            "fields": {
                "ENTITY_ID": Ref("d", ("item", "id")),
                "ENTITY_TYPE": "deal",
                "COMMENT": "контракт",
            }
        },
    )
    result = portal.batch(batch)
    assert result.errors == {}
    contact_id = int(result.results["c"]["item"]["id"])
    deal_id = int(result.results["d"]["item"]["id"])
    try:
        assert int(result.results["d"]["item"]["contactId"]) == contact_id
        found = portal.call(
            "crm.duplicate.findbycomm",
            {"type": "PHONE", "values": [phone], "entity_type": "CONTACT"},
        ).result
        assert contact_id in [int(x) for x in found["CONTACT"]]
        listed = portal.call(
            "crm.item.list",
            {
                "entityTypeId": 2,
                "filter": {"=originatorId": ORIGIN, "@originId": [origin]},
                "select": ["id", "originId"],
            },
        )
        assert [int(i["id"]) for i in listed.result["items"]] == [deal_id]
        comments = portal.call(
            "crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal"}}
        ).result
        assert any(c["COMMENT"] == "контракт" for c in comments)
    finally:
        portal.call("crm.item.delete", {"entityTypeId": 2, "id": deal_id})
        portal.call("crm.item.delete", {"entityTypeId": 3, "id": contact_id})


def test_nothing_found_is_an_empty_list(portal):
    result = portal.call(
        "crm.duplicate.findbycomm",
        {"type": "EMAIL", "values": [f"{uuid.uuid4().hex}@nowhere.invalid"]},
    ).result
    assert result == []


def test_halt_stops_at_the_first_error(portal):
    batch = Batch()
    batch.add("bad", "crm.item.get", {"entityTypeId": 2, "id": 2_000_000_000})
    batch.add("after", "user.current")
    result = portal.batch(batch, halt=True)
    assert set(result.errors) == {"bad"} and "after" not in result.results
    assert set(portal.batch(batch).results) == {"after"}


def test_errors_are_typed(portal):
    with pytest.raises(MethodError):
        portal.call("crm.item.add", {"entityTypeId": 2, "fields": "not an array"})
    with pytest.raises(WrongAuthType):  # needs an application, not a webhook
        portal.call(
            "telephony.externalCall.register",
            {"USER_ID": 1, "PHONE_NUMBER": "+79990000000", "TYPE": 2},
        )
