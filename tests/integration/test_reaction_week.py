"""A simulated week, 2-9 November 2026, on the sample directory and a sandbox portal.

The week has everything a reaction-time clock must get right: office hours, a shortened eve
(Tuesday 3rd), a federal holiday (Wednesday 4th), Tatarstan's shortened eve and holiday
(Thursday 5th, Friday 6th: Constitution Day), a weekend, and Bashkortostan's time zone. Eight
complaints and vacancies arrive; some are answered in time, some a second before a step, some
never. The clock only moves forward; at every escalation moment the sweep runs a second before
and at the moment itself (twice), and the worker runs the steps against the portal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from hub import escalation
from hub.bitrix24.client import Bitrix24Client, WebhookAuth
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.bitrix24.sandbox.notify import notifications
from hub.db import session_scope
from hub.http.reaction import report
from hub.routing import service as routing
from hub.storage import replies as replies_store
from tests.conftest import LiveServer
from tests.integration.reaction_helpers import (
    SimClock,
    due,
    get,
    jobs,
    publish_dir,
    route_at,
    trace_of,
    worker,
)

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
MSK = ZoneInfo("Europe/Moscow")
EKB = ZoneInfo("Asia/Yekaterinburg")


def msk(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=MSK).astimezone(UTC)


def ekb(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=EKB).astimezone(UTC)


# name: (received, text, expected deadline, answered or None, [(step, action, moment)] that run)
WEEK = {
    # Moscow office hours: 30 working minutes, reminder at 80 %, then the whole ladder.
    "A": (msk(2, 10), "Купил просроченное молоко в Москве", msk(2, 10, 30), msk(2, 12),
          [(0, "notify_assignee", msk(2, 10, 24)), (1, "reassign", msk(2, 10, 30)),
           (2, "notify_head", msk(2, 10, 30)), (3, "overdue_stage", msk(2, 11, 30))]),
    # Answered one second before the reminder: nothing at all happens.
    "B": (msk(2, 11), "Просроченный творог в Москве", msk(2, 11, 30), msk(2, 11, 23, 59), []),
    # Reminded, then answered one second before the deadline: not reassigned, head not told.
    "C": (msk(2, 12), "Испорченная курица в Москве", msk(2, 12, 30), msk(2, 12, 29, 59),
          [(0, "notify_assignee", msk(2, 12, 24))]),
    # After the shortened eve's 17:00, over the federal holiday: Thursday 09:30.
    "D": (msk(3, 17, 30), "Просроченное молоко в Казани", msk(5, 9, 30), msk(5, 9, 20), []),
    # Tatarstan: its own shortened eve, Constitution Day on Friday, the weekend: Monday 09:30.
    "E": (msk(5, 17, 45), "Тухлое мясо в Казани", msk(9, 9, 30), msk(9, 9, 10), []),
    # The same minute in Moscow, where Friday is a working day: 09:15; answered late.
    "F": (msk(5, 17, 45), "Тухлое мясо в Москве", msk(6, 9, 15), msk(6, 10),
          [(0, "notify_assignee", msk(6, 9, 9)), (1, "reassign", msk(6, 9, 15)),
           (2, "notify_head", msk(6, 9, 15))]),
    # A vacancy in Ufa, one working day in Yekaterinburg time, never answered.
    "G": (msk(6, 15), "Есть ли вакансии продавца в Уфе?", ekb(9, 17), None,
          [(0, "notify_assignee", ekb(9, 15, 12)), (1, "reassign", ekb(9, 17)),
           (2, "notify_head", ekb(9, 17)), (3, "overdue_stage", ekb(9, 18))]),
    # The next week, answered in five minutes.
    "H": (msk(9, 10), "Просроченный кефир в Москве", msk(9, 10, 30), msk(9, 10, 5), []),
}  # fmt: skip
END = msk(9, 16, 30)


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[Portal, Bitrix24Client]]:
    app = create_sandbox_app(tmp_path / "portal.db", seed_dir=SAMPLE, rate=None)
    with LiveServer(app) as server:
        auth = WebhookAuth(f"{server.url}/rest/1/sandbox/")
        with Bitrix24Client(auth, timeout=5.0, limiter=MemoryRateLimiter(1000, 1000)) as client:
            yield app.state.portal, client


def test_a_week_of_appeals(engine: Engine, portal: tuple[Portal, Bitrix24Client]) -> None:
    sandbox, client = portal
    routing.invalidate_cache()
    publish_dir(engine, SAMPLE)
    clock = SimClock(msk(2, 0))
    work = worker(engine, clock, client)
    ids: dict[str, int] = {}
    firing = {(n, step): at for n, spec in WEEK.items() for step, _do, at in spec[4]}

    # Every moment that matters, in order: arrivals, replies, and each planned step of every
    # appeal (also those that must not run) a second before and at the moment.
    events: list[tuple[datetime, int, str, str]] = []
    for name, (received, _text, _deadline, answered, _steps) in WEEK.items():
        events.append((received, 0, "route", name))
        if answered:
            events.append((answered, 1, "reply", name))
    events.sort()
    while events:
        at, _order, what, name = events.pop(0)
        clock.now = at
        if what == "route":
            ids[name] = route_at(engine, WEEK[name][1], at)
            work.run_until_idle()
            assert due(engine, ids[name]) == WEEK[name][2], name
            for plan_step in get(engine, ids[name]).escalation_plan:
                moment = datetime.fromisoformat(plan_step["at"])
                events += [(moment - timedelta(seconds=1), 2, "sweep", name)]
                events += [(moment, 2, "sweep", name)]
            events.sort()
        elif what == "reply":
            with session_scope(engine) as s:
                replies_store.mark_answered(s, appeal_id=ids[name], at=at)
        else:
            if escalation.sweep(engine, now=at):
                assert escalation.sweep(engine, now=at) == 0  # the same moment again: nothing
                work.run_until_idle()
            names = {i: n for n, i in ids.items()}
            queued = {
                (names[j.appeal_id], int(j.key.rsplit(":", 1)[1]))
                for j in jobs(engine, escalation.ESCALATE_JOB)
            }
            expected = {key for key, moment in firing.items() if moment <= at and key[0] in ids}
            assert queued == expected, f"at {at.astimezone(MSK):%a %d %H:%M:%S}"
    clock.now = END
    escalation.sweep(engine, now=END)
    work.run_until_idle()

    # Each step ran once, is in the trace once, and nothing else happened.
    for name, (_r, _t, _d, _a, steps) in WEEK.items():
        traced = trace_of(engine, ids[name], "escalation")
        assert [t["data"]["do"] for t in traced] == [do for _s, do, _m in steps], name
        assert all(j.state == "done" for j in jobs(engine, escalation.ESCALATE_JOB, ids[name]))
    _check_portal(engine, sandbox, ids)
    _check_reports(engine, ids)


def _check_portal(engine: Engine, sandbox: Portal, ids: dict[str, int]) -> None:
    by_tag: dict[str, list[dict]] = {}
    for n in notifications(sandbox.store):
        by_tag.setdefault(n["TAG"], []).append(n)
    expected_tags = {
        f"clienthub|escalate|{ids[name]}|{step}"
        for name, spec in WEEK.items()
        for step, do, _at in spec[4]
        if do != "overdue_stage"
    }
    assert set(by_tag) == expected_tags
    assert all(len(v) == 1 for v in by_tag.values())

    a = get(engine, ids["A"])
    first = trace_of(engine, ids["A"], "escalation")[1]["data"]
    assert first["from"] != first["to"] == a.assignee_id
    deal = next(d for d in sandbox.store.items(2) if d["id"] == a.crm_entity_id)
    assert deal["stageId"] == "C1:UC_OVERDUE"
    assert deal["assignedById"] == a.bitrix_user_id
    tag = f"clienthub|escalate|{ids['A']}"
    assert by_tag[f"{tag}|1"][0]["USER_ID"] == a.bitrix_user_id  # the new responsible
    assert by_tag[f"{tag}|2"][0]["USER_ID"] == 123  # qc-001, head of quality (bitrix24.yaml)
    assert "не ответил(а) в срок" in trace_of(engine, ids["A"], "escalation")[1]["message"]

    g = get(engine, ids["G"])
    deal = next(d for d in sandbox.store.items(2) if d["id"] == g.crm_entity_id)
    assert deal["stageId"] == "C2:UC_OVERDUE" and g.assignee_id in ("hr-042", "hr-043")
    f = get(engine, ids["F"])
    deal = next(d for d in sandbox.store.items(2) if d["id"] == f.crm_entity_id)
    assert deal["stageId"] == "C1:NEW"  # answered before its overdue step


def _check_reports(engine: Engine, ids: dict[str, int]) -> None:
    """Every figure recomputed here from the week's own table, not from the database."""
    since, until = msk(2, 0), msk(10, 0)
    appeals = {name: get(engine, i) for name, i in ids.items()}
    groups = {
        "department": lambda n: appeals[n].department,
        "week": lambda n: "2026-W46" if n == "H" else "2026-W45",
        "employee": lambda n: appeals[n].assignee_id,
        "channel": lambda _n: "vk",
    }
    for by, key_of in groups.items():
        rep = report(engine, since=since, until=until, by=by, now=END)
        expected = {key_of(n) for n in WEEK}
        assert [line.key for line in rep.lines] == sorted(expected)
        for line in [*rep.lines, rep.total]:
            names = [n for n in WEEK if line.key == "*" or key_of(n) == line.key]
            mine = _expected(names)
            got = line.as_dict()
            assert {k: got[k] for k in mine} == mine, (by, line.key)
    assert report(engine, since=since, until=until, now=END).total.overdue_now == 1  # G


def _expected(names: list[str]) -> dict[str, object]:
    waits = sorted(
        (WEEK[n][3] - WEEK[n][0]) / timedelta(minutes=1) for n in names if WEEK[n][3] is not None
    )
    middle = len(waits) // 2
    median = None
    if waits:
        median = waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2
    decided = [n for n in names if WEEK[n][3] is not None or WEEK[n][2] < END]
    within = [n for n in decided if WEEK[n][3] is not None and WEEK[n][3] <= WEEK[n][2]]
    return {
        "appeals": len(names),
        "answered": len(waits),
        "median_minutes": None if median is None else round(median, 2),
        "p90_minutes": round(waits[math.ceil(0.9 * len(waits)) - 1], 2) if waits else None,
        "with_target": len(decided),
        "within_target": len(within),
        "overdue_now": sum(1 for n in names if WEEK[n][3] is None and WEEK[n][2] < END),
    }
