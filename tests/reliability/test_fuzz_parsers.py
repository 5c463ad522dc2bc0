"""Every connector's ``verify`` and ``parse`` against mutated recorded payloads.

The contract under attack: ``verify`` answers a bad body with :class:`Rejected` (a clear 4xx),
never another exception (a 5xx); ``parse`` returns well-formed appeals or says why not
(``UnsupportedEvent``, ``IgnoredEvent``, ``PayloadError``), never crashes. The pipeline test then
stores hostile bodies as raw events and runs the real parse job: each raw event ends with whole
appeals or none, and a malformed one is a dead job a human can see, not one retried for a day.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connectors import CONNECTORS, get_connector
from connectors.base import (
    IgnoredEvent,
    InboundRequest,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SourceConfig,
    UnsupportedEvent,
)
from connectors.payload import PayloadError
from hub.db import session_scope
from hub.ingest import IngestWriter
from hub.models import Appeal, Job, RawEvent
from hub.storage.raw_events import IncomingEvent
from tests.helpers import drain
from tests.reliability.fuzzing import Seed, mutated, seeds

SEEDS = seeds()
EXPLAINED = (UnsupportedEvent, IgnoredEvent, PayloadError, Rejected)
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI never flakes on a new one
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_connector_has_seeds() -> None:
    missing = set(CONNECTORS) - {s.channel for s in SEEDS}
    assert not missing, f"no recorded payloads to mutate for {sorted(missing)}"


def _view(seed: Seed, body: bytes) -> RawEventView:
    return RawEventView(
        id=1,
        channel=seed.channel,
        source="main",
        external_id="fuzz-1",
        event_type=seed.name.split("__", 1)[0],
        headers={"content-type": seed.content_type},
        content_type=seed.content_type,
        body=body,
        received_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        source_config={},
    )


def _check_appeal(item: object) -> None:
    assert isinstance(item, ParsedAppeal)
    assert isinstance(item.text, str)
    assert item.external_id is None or isinstance(item.external_id, str)
    assert item.thread_key is None or isinstance(item.thread_key, str)
    assert isinstance(item.fields, dict) and isinstance(item.attachments, list)
    assert item.rating is None or isinstance(item.rating, int)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"{s.channel}-{s.name}")
@FUZZ
@given(data=st.data())
def test_parse_explains_or_returns_whole_appeals(seed: Seed, data: st.DataObject) -> None:
    connector = get_connector(seed.channel)
    assert connector is not None
    body = data.draw(mutated(seed))
    try:
        result = connector.parse(_view(seed, body))
    except EXPLAINED:
        return
    assert isinstance(result, list)
    for item in result:
        _check_appeal(item)


SECRETS = {
    "secret": "s3cret",
    "token": "s3cret",
    "webhook_secret": "s3cret",
    "url_token": "s3cret",
    "key": "s3cret",
    "salt": "s3cret",
    "signing_key": "s3cret",
}


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"{s.channel}-{s.name}")
@FUZZ
@given(data=st.data())
def test_verify_refuses_cleanly(seed: Seed, data: st.DataObject) -> None:
    connector = get_connector(seed.channel)
    assert connector is not None
    body = data.draw(mutated(seed))
    request = InboundRequest(
        method="POST",
        path=f"/hooks/{seed.channel}/main",
        headers={"content-type": seed.content_type},
        query={},
        body=body,
        content_type=seed.content_type.split(";")[0],
        remote_addr="203.0.113.5",
    )
    source = SourceConfig(seed.channel, "main", {}, SECRETS)
    try:
        connector.verify(request, source)
    except Rejected as exc:
        assert 400 <= exc.status < 500 and exc.reason


HOSTILE = [
    (b'{"type": "message_new", "object": {"message": "not an object"}}', "vk"),
    (b'{"update_id": 7, "message": {"message_id": "x", "chat": null}}', "telegram"),
    (b'{"update_id": 8, "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": '
     b'"private"}, "text": "nul \\u0000 and \\ud800"}}', "telegram"),
    (b"\xff\xfe not even text", "vk"),
    (b'{"a": [' * 3000 + b"1" + b"]}" * 3000, "ok"),
]  # fmt: skip


def test_hostile_raw_events_end_whole_or_dead(engine, env, monkeypatch) -> None:
    """Through the real worker: appeals all-or-nothing per raw event; a malformed event's parse
    job is dead at once (visible in dead letters), with the reason."""
    monkeypatch.setenv("CLIENTHUB_RETRY_HORIZON_HOURS", "24")
    writer = IngestWriter(engine)
    ids = []
    for i, (body, channel) in enumerate(HOSTILE):
        stored = writer.store_sync(
            IncomingEvent(
                channel=channel,
                source="main",
                external_id=f"hostile-{i}",
                event_type=None,
                headers={},
                content_type="application/json",
                body=body,
            )
        )
        ids.append(stored.raw_event_id)
    drain(engine)
    with session_scope(engine, read_only=True) as s:
        jobs = {j.payload["raw_event_id"]: j for j in s.execute(select(Job)).scalars()}
        raws = {r.id: r for r in s.execute(select(RawEvent)).scalars()}
        appeals = list(s.execute(select(Appeal)).scalars())
    for raw_id in ids:
        job = jobs[raw_id]
        made = [a for a in appeals if a.raw_event_id == raw_id]
        assert job.state in ("done", "dead"), (raw_id, job.state, job.last_error)
        if job.state == "dead":
            assert not made and job.last_error
        assert raws[raw_id].body  # the raw event is kept whatever happened
    # NUL and a lone surrogate in a customer's text: stored (U+FFFD), not a job stuck retrying.
    [nul] = [a for a in appeals if a.raw_event_id == ids[2]]
    assert nul.text == "nul \ufffd and \ufffd"
    assert jobs[ids[0]].state == "dead" and "PayloadError" in (jobs[ids[0]].last_error or "")
