"""Webhook ingest over real HTTP into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from hub.db import session_scope
from hub.models import Appeal, Job, RawEvent, RejectedRequest
from hub.storage import sources as sources_store
from tests.helpers import api_headers, count, drain

FORM = "name=Иван&phone=89161234567&message=Здравствуйте"
URLENC = {"Content-Type": "application/x-www-form-urlencoded"}


def test_form_post_is_stored_parsed_and_traced(live_server, engine):
    r = httpx.post(f"{live_server.url}/hooks/form/site", content=FORM.encode(), headers=URLENC)
    assert r.status_code == 200
    assert r.headers["x-clienthub-duplicate"] == "0"
    # Acknowledged means stored: the raw event and its parse job exist before any worker ran.
    assert count(engine, RawEvent) == 1
    assert count(engine, Job, Job.kind == "parse.event") == 1

    drain(engine)
    with session_scope(engine, read_only=True) as s:
        appeal = s.execute(select(Appeal)).scalar_one()
    assert (appeal.channel, appeal.source, appeal.kind) == ("form", "site", "form")
    assert appeal.author_name == "Иван"
    assert appeal.author_phone == "89161234567"
    assert appeal.text == "Здравствуйте"
    assert appeal.state in {"routed", "filtered"}
    assert appeal.trace, "every appeal carries its routing trace"

    api = httpx.get(
        f"{live_server.url}/api/appeals/{appeal.id}", headers=api_headers(engine)
    ).json()
    assert api["raw_event"]["body"] == FORM
    assert api["trace"] == appeal.trace


def test_json_form_with_custom_field_mapping(live_server, engine):
    with session_scope(engine) as s:
        sources_store.upsert(
            s, channel="form", source="landing", config={"fields": {"text": "vopros"}}
        )
    body = {"vopros": "Есть ли вакансии в Твери?", "Телефон": "+7 (4822) 12-34-56", "city": "Тверь"}
    r = httpx.post(f"{live_server.url}/hooks/form/landing", json=body)
    assert r.status_code == 200, r.text
    drain(engine)
    with session_scope(engine, read_only=True) as s:
        appeal = s.execute(select(Appeal)).scalar_one()
    assert appeal.text == "Есть ли вакансии в Твери?"
    assert appeal.author_phone == "+7 (4822) 12-34-56"
    assert appeal.fields == {"city": "Тверь"}


def test_duplicate_delivered_five_times_concurrently_is_one_event_and_one_appeal(
    live_server, engine
):
    headers = {"Idempotency-Key": "tilda-777", **URLENC}

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server.url) as client:
            return await asyncio.gather(
                *(
                    client.post("/hooks/form/site", content=FORM.encode(), headers=headers)
                    for _ in range(5)
                )
            )

    responses = asyncio.run(send())
    assert [r.status_code for r in responses] == [200] * 5
    assert sorted(r.headers["x-clienthub-duplicate"] for r in responses) == [
        "0",
        "1",
        "1",
        "1",
        "1",
    ]
    assert len({r.headers["x-clienthub-event"] for r in responses}) == 1
    drain(engine)
    assert count(engine, RawEvent) == 1
    assert count(engine, Appeal) == 1
    assert count(engine, Job, Job.kind == "parse.event") == 1


def test_identical_body_without_id_counts_as_a_retry(live_server, engine):
    for _ in range(3):
        assert (
            httpx.post(
                f"{live_server.url}/hooks/form/site", content=FORM.encode(), headers=URLENC
            ).status_code
            == 200
        )
    drain(engine)
    assert count(engine, Appeal) == 1


BAD_INPUTS = [
    pytest.param("/hooks/form/site", b"", URLENC, 400, "empty body", id="empty-body"),
    pytest.param(
        "/hooks/form/site",
        b"<a>1</a>",
        {"Content-Type": "text/xml"},
        415,
        "unsupported content type",
        id="wrong-content-type",
    ),
    pytest.param(
        "/hooks/form/site", b"message=\xff\xfe", URLENC, 400, "not valid UTF-8", id="invalid-utf8"
    ),
    pytest.param(
        "/hooks/form/site",
        b'{"message": ',
        {"Content-Type": "application/json"},
        400,
        "malformed JSON",
        id="malformed-json",
    ),
    pytest.param(
        "/hooks/form/site",
        b"[1, 2]",
        {"Content-Type": "application/json"},
        422,
        "must be an object",
        id="json-not-object",
    ),
    pytest.param(
        "/hooks/form/site",
        b"utm=1&page=2",
        URLENC,
        422,
        "no message, phone or e-mail",
        id="no-fields",
    ),
    pytest.param(
        "/hooks/nope/site", FORM.encode(), URLENC, 404, "unknown channel", id="unknown-channel"
    ),
    pytest.param(
        "/hooks/form/nope", FORM.encode(), URLENC, 404, "unknown source", id="unknown-source"
    ),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "reason"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_reason_and_recorded(
    live_server, engine, path, body, headers, status, reason
):
    r = httpx.post(f"{live_server.url}{path}", content=body, headers=headers)
    assert r.status_code == status
    assert reason in r.json()["error"]
    with session_scope(engine, read_only=True) as s:
        rejected = s.execute(select(RejectedRequest)).scalar_one()
    assert rejected.status_code == status
    assert reason in rejected.reason
    assert rejected.path == path
    # A refused request is never half-stored.
    assert count(engine, RawEvent) == 0
    assert count(engine, Job) == 0
    assert count(engine, Appeal) == 0


def test_ten_megabyte_body_gets_413(live_server, engine):
    big = b"message=" + b"a" * (10 * 1024 * 1024)
    r = httpx.post(f"{live_server.url}/hooks/form/site", content=big, headers=URLENC)
    assert r.status_code == 413
    with session_scope(engine, read_only=True) as s:
        rejected = s.execute(select(RejectedRequest)).scalar_one()
    assert rejected.status_code == 413
    assert rejected.body_excerpt is None
    assert rejected.content_length == len(big)
    assert count(engine, RawEvent) == 0


def test_chunked_body_over_the_limit_gets_413(live_server, engine):
    def chunks():
        for _ in range(40):
            yield b"a" * 65536

    r = httpx.post(f"{live_server.url}/hooks/form/site", content=chunks(), headers=URLENC)
    assert r.status_code == 413
    assert count(engine, RawEvent) == 0


def test_source_secret_is_checked(live_server, engine):
    with session_scope(engine) as s:
        sources_store.upsert(s, channel="form", source="secure", secrets={"token": "s3cret"})
    url = f"{live_server.url}/hooks/form/secure"
    assert httpx.post(url, content=FORM.encode(), headers=URLENC).status_code == 403
    wrong = {**URLENC, "X-ClientHub-Token": "nope"}
    assert httpx.post(url, content=FORM.encode(), headers=wrong).status_code == 403
    right = {**URLENC, "X-ClientHub-Token": "s3cret"}
    assert httpx.post(url, content=FORM.encode(), headers=right).status_code == 200
    assert count(engine, RejectedRequest, RejectedRequest.status_code == 403) == 2
    assert count(engine, RawEvent) == 1
