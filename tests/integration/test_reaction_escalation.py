"""Escalation steps at their edges: answered while queued, the portal down, access refused,
no portal at all. A small directory, a sandbox portal and a simulated clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from hub import escalation
from hub.bitrix24.client import Bitrix24Client, RetryPolicy, WebhookAuth
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.bitrix24.sandbox.notify import notifications
from hub.db import session_scope
from hub.models import Job
from hub.routing import service as routing
from hub.storage import replies as replies_store
from tests.conftest import LiveServer
from tests.integration.reaction_helpers import (
    SimClock,
    get,
    jobs,
    publish,
    route_at,
    trace_of,
    worker,
)
from tests.unit.routing.helpers import files

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
NOW = datetime(2025, 11, 12, 8, 0, tzinfo=UTC)  # Wednesday 11:00 in Moscow
SLA = """\
targets:
  - id: all
    target: 30m
    hours: "ежедневно 08:00-20:00"
escalations:
  e:
    - {at: "50%", do: notify_assignee}
    - {at: "100%", do: overdue_stage}
default_escalation: e
overdue_stages: {0: UC_OVERDUE}
"""
TEXT = "Ищу работу, есть вакансия?"  # the test directory sends it to the hotline: pipeline 0
# The edges below take the same code paths on both databases (the week test runs on both).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[Portal, Bitrix24Client]]:
    app = create_sandbox_app(tmp_path / "portal.db", seed_dir=SAMPLE, rate=None)
    fast = RetryPolicy(attempts=2, base_seconds=0.01, max_delay_seconds=0.02)
    with LiveServer(app) as server:
        auth = WebhookAuth(f"{server.url}/rest/1/sandbox/")
        limiter = MemoryRateLimiter(1000, 1000)
        with Bitrix24Client(auth, timeout=5.0, limiter=limiter, retry=fast) as client:
            yield app.state.portal, client


@pytest.fixture
def hub(engine: Engine) -> Engine:
    routing.invalidate_cache()
    publish(engine, files(sla_yaml=SLA))
    return engine


def _retry_now(engine: Engine) -> None:
    """The backoff has passed (the clock is simulated, the queue's is not)."""
    with session_scope(engine) as s:
        s.execute(update(Job).where(Job.state == "queued").values(run_at=NOW - timedelta(days=1)))


@sqlite_only
def test_answered_after_queueing_is_not_escalated(
    hub: Engine, portal: tuple[Portal, Bitrix24Client]
) -> None:
    sandbox, client = portal
    clock = SimClock(NOW)
    appeal_id = route_at(hub, TEXT, NOW)
    work = worker(hub, clock, client)
    work.run_until_idle()  # delivered
    clock.now = NOW + timedelta(minutes=15)
    assert escalation.sweep(hub, now=clock.now) == 1
    with session_scope(hub) as s:  # the reply lands before the worker takes the step
        replies_store.mark_answered(s, appeal_id=appeal_id, at=clock.now)
    work.run_until_idle()
    [note] = trace_of(hub, appeal_id, "escalation")
    assert "не понадобилась: первый ответ дан" in note["message"]
    assert notifications(sandbox.store) == []
    clock.now = NOW + timedelta(hours=2)
    assert escalation.sweep(hub, now=clock.now) == 0
    assert get(hub, appeal_id).next_escalation_at is None  # dropped from the sweep's index


def test_a_portal_outage_delays_the_step_and_it_still_happens_once(
    hub: Engine, portal: tuple[Portal, Bitrix24Client]
) -> None:
    sandbox, client = portal
    clock = SimClock(NOW)
    appeal_id = route_at(hub, TEXT, NOW)
    work = worker(hub, clock, client)
    work.run_until_idle()
    deal_id = get(hub, appeal_id).crm_entity_id
    sandbox.faults.update({"outage": True})
    clock.now = NOW + timedelta(minutes=30)
    assert escalation.sweep(hub, now=clock.now) == 2  # the reminder and the stage
    work.run_until_idle()
    assert {j.state for j in jobs(hub, escalation.ESCALATE_JOB)} == {"queued"}
    assert all(j.last_error for j in jobs(hub, escalation.ESCALATE_JOB))
    assert not trace_of(hub, appeal_id, "escalation")  # nothing is recorded until it happens
    sandbox.faults.update({"outage": False})
    _retry_now(hub)
    work.run_until_idle()
    assert [j.state for j in jobs(hub, escalation.ESCALATE_JOB)] == ["done", "done"]
    [sent] = notifications(sandbox.store)
    assert sent["USER_ID"] == get(hub, appeal_id).bitrix_user_id
    assert sent["TAG"] == f"clienthub|escalate|{appeal_id}|0"
    assert next(d for d in sandbox.store.items(2) if d["id"] == deal_id)["stageId"] == "UC_OVERDUE"
    messages = [t["message"] for t in trace_of(hub, appeal_id, "escalation")]
    assert len(messages) == 2 and "уведомление Первый Оператор — готово" in messages[0]
    assert f"сделка {deal_id} → UC_OVERDUE — готово" in messages[1]


def test_a_repeated_notification_replaces_the_first(portal: tuple[Portal, Bitrix24Client]) -> None:
    """A worker killed after the portal answered and before the commit sends the step again:
    the tag makes the portal keep one notification."""
    sandbox, client = portal
    params = {"USER_ID": 12, "MESSAGE": "напоминание", "TAG": "clienthub|escalate|1|0"}
    params["CLIENT_ID"] = escalation.CLIENT_ID
    first = client.call("im.notify.system.add", params).result
    second = client.call("im.notify.system.add", params).result
    assert second != first and [n["ID"] for n in notifications(sandbox.store)] == [second]
    no_client = {k: v for k, v in params.items() if k != "CLIENT_ID"}
    client.call("im.notify.system.add", no_client)
    client.call("im.notify.system.add", no_client)  # without CLIENT_ID a webhook's tag is ignored
    assert len(notifications(sandbox.store)) == 3


@sqlite_only
def test_refused_access_is_a_dead_letter(
    hub: Engine, portal: tuple[Portal, Bitrix24Client]
) -> None:
    sandbox, client = portal
    clock = SimClock(NOW)
    appeal_id = route_at(hub, TEXT, NOW)
    work = worker(hub, clock, client)
    work.run_until_idle()
    rule = {"method": "im.notify.system.add", "error": "insufficient_scope", "count": 1}
    sandbox.faults.update({"fail_commands": [rule]})
    clock.now = NOW + timedelta(minutes=15)
    escalation.sweep(hub, now=clock.now)
    work.run_until_idle()
    [job] = jobs(hub, escalation.ESCALATE_JOB)
    assert job.state == "dead" and "insufficient_scope" in (job.last_error or "")
    assert not trace_of(hub, appeal_id, "escalation")


@sqlite_only
def test_without_a_portal_the_steps_are_recorded(hub: Engine) -> None:
    clock = SimClock(NOW)
    appeal_id = route_at(hub, TEXT, NOW, deliver=False)
    clock.now = NOW + timedelta(minutes=30)
    assert escalation.sweep(hub, now=clock.now) == 2
    worker(hub, clock, None).run_until_idle()
    first, second = trace_of(hub, appeal_id, "escalation")
    assert "не подключён" in first["message"]
    assert "обращения нет в Битрикс24" in second["message"]
    assert get(hub, appeal_id).escalation_step == 2


def test_a_wave_of_steps_shares_batch_requests(
    hub: Engine, portal: tuple[Portal, Bitrix24Client]
) -> None:
    """30 appeals overdue at once: 60 steps (a reminder and a stage each) cost the portal three
    ``batch`` requests, not 60 calls, and each step still lands once with its own outcome."""
    sandbox, client = portal
    clock = SimClock(NOW)
    ids = [route_at(hub, TEXT, NOW) for _ in range(30)]
    work = worker(hub, clock, client)
    work.run_until_idle()
    before = max((c["id"] for c in sandbox.store.calls()), default=0)
    clock.now = NOW + timedelta(minutes=30)
    assert escalation.sweep(hub, now=clock.now) == 60
    work.run_until_idle()
    top = sandbox.store.calls(since=before, top=True)
    assert [c["method"] for c in top] == ["batch"] * 3
    assert {j.state for j in jobs(hub, escalation.ESCALATE_JOB)} == {"done"}
    tags = sorted(n["TAG"] for n in notifications(sandbox.store))
    assert tags == sorted(f"clienthub|escalate|{i}|0" for i in ids)
    deals = {d["id"]: d for d in sandbox.store.items(2)}
    for appeal_id in ids:
        appeal = get(hub, appeal_id)
        assert deals[appeal.crm_entity_id]["stageId"] == "UC_OVERDUE"
        reminder, stage = trace_of(hub, appeal_id, "escalation")
        assert "— готово" in reminder["message"] and "UC_OVERDUE — готово" in stage["message"]


def test_a_refused_call_in_a_batch_fails_only_its_own_step(
    hub: Engine, portal: tuple[Portal, Bitrix24Client]
) -> None:
    """The portal refuses one stage change inside the batch: that step records the error, the
    others of the batch are done."""
    sandbox, client = portal
    clock = SimClock(NOW)
    ids = [route_at(hub, TEXT, NOW) for _ in range(3)]
    work = worker(hub, clock, client)
    work.run_until_idle()
    rule = {"method": "crm.item.update", "error": "ACCESS_DENIED", "count": 1}
    sandbox.faults.update({"fail_commands": [rule]})
    clock.now = NOW + timedelta(minutes=30)
    assert escalation.sweep(hub, now=clock.now) == 6
    work.run_until_idle()
    assert {j.state for j in jobs(hub, escalation.ESCALATE_JOB)} == {"done"}
    stages = [trace_of(hub, i, "escalation")[1]["message"] for i in ids]
    assert sum("ошибка: ACCESS_DENIED" in m for m in stages) == 1
    assert sum("UC_OVERDUE — готово" in m for m in stages) == 2
    assert len(notifications(sandbox.store)) == 3
