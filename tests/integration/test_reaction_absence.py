"""Absent responsibles: once the published directory marks someone absent, their unanswered
appeals go to the next one of the same pool, once, with the reason in the trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from hub import escalation
from hub.db import session_scope
from hub.routing import service as routing
from hub.storage import replies as replies_store
from tests.integration.reaction_helpers import (
    SimClock,
    get,
    jobs,
    publish,
    route_at,
    trace_of,
    worker,
)
from tests.unit.routing.helpers import BASE, files

# Wednesday 12 November 2025, 11:00 in Moscow: the hotline (08:00-20:00 daily) is on duty.
NOW = datetime(2025, 11, 12, 8, 0, tzinfo=UTC)
SLA = "targets:\n  - id: all\n    target: 2h\n"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # same SQL as above


def employees(absent: dict[str, str]) -> str:
    """employees.csv of the test directory with ``absences`` cells filled in."""
    lines = BASE["employees.csv"].splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.rstrip("\n").split(",")
        if cells[0] in absent:
            cells[9] = absent[cells[0]]
        out.append(",".join(cells) + "\n")
    return "".join(out)


def test_appeals_of_an_absent_employee_move_to_the_next_in_the_pool(engine: Engine) -> None:
    routing.invalidate_cache()
    publish(engine, files(sla_yaml=SLA))
    clock = SimClock(NOW)
    ids = [route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False) for _ in range(4)]
    # Round robin over op1, op2, op3: the fourth goes to op1 again.
    assert [get(engine, i).assignee_id for i in ids] == ["op1", "op2", "op3", "op1"]
    with session_scope(engine) as s:
        replies_store.mark_answered(s, appeal_id=ids[1], at=NOW + timedelta(minutes=5))

    assert escalation.absence_sweep(engine, now=NOW) == 0  # nobody is absent yet
    # A new version: op1 is on leave from the 10th, op2 from today.
    publish(
        engine,
        files(
            sla_yaml=SLA,
            employees_csv=employees({"op1": "2025-11-10..2025-11-20", "op2": "2025-11-12"}),
        ),
    )
    assert escalation.absence_sweep(engine, now=NOW) == 2  # op1's two; op2's is answered
    assert escalation.absence_sweep(engine, now=NOW) == 0  # queued once
    worker(engine, clock, None).run_until_idle()

    for i in (ids[0], ids[3]):
        appeal = get(engine, i)
        assert appeal.assignee_id == "op3"  # op2 is absent too: skipped with the reason
        [note] = trace_of(engine, i, "absence")
        assert note["message"].startswith("Ответственный Первый Оператор отсутствует (10.11–20.11)")
        assert "Второй Оператор — отсутствует" in note["message"]
        assert note["data"]["from"] == "op1" and note["data"]["to"] == "op3"
    assert get(engine, ids[1]).assignee_id == "op2"  # answered: left alone
    assert not trace_of(engine, ids[1], "absence")
    assert get(engine, ids[2]).assignee_id == "op3"
    assert [j.state for j in jobs(engine, escalation.ABSENCE_JOB)] == ["done", "done"]

    # The next sweeps find nothing to move; the cursor continued the round robin.
    assert escalation.absence_sweep(engine, now=NOW + timedelta(minutes=1)) == 0
    later = route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False)
    assert get(engine, later).assignee_id == "op3"  # op1 and op2 are still away


@sqlite_only
def test_nobody_left_in_the_pool_goes_to_the_fallback(engine: Engine) -> None:
    routing.invalidate_cache()
    publish(engine, files(sla_yaml=SLA))
    appeal_id = route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False)
    away = {"op1": "2025-11-12", "op2": "2025-11-12", "op3": "2025-11-12"}
    publish(engine, files(sla_yaml=SLA, employees_csv=employees(away)))
    assert escalation.absence_sweep(engine, now=NOW) == 1
    worker(engine, SimClock(NOW), None).run_until_idle()
    # The hotline pool lists its members and has no department, so no head: the reserve.
    assert get(engine, appeal_id).assignee_id == "reserve"
    [note] = trace_of(engine, appeal_id, "absence")
    assert "Назначен резервный ответственный Резервная очередь" in note["message"]


@sqlite_only
def test_an_absence_that_ended_changes_nothing(engine: Engine) -> None:
    routing.invalidate_cache()
    publish(engine, files(sla_yaml=SLA, employees_csv=employees({"op1": "2025-11-01..2025-11-11"})))
    appeal_id = route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False)
    assert get(engine, appeal_id).assignee_id == "op1"
    assert escalation.absence_sweep(engine, now=NOW) == 0
    # In op1's own zone the absence ended yesterday; the day before, it would have counted.
    assert escalation.absence_sweep(engine, now=NOW - timedelta(days=1)) == 1


def test_a_batch_of_handovers_continues_the_round_robin(engine: Engine) -> None:
    """op1's four appeals are handed over in one job batch: the turns alternate between op2
    and op3 as if each handover had been committed before the next was decided."""
    routing.invalidate_cache()
    publish(engine, files(sla_yaml=SLA))
    ids = [route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False) for _ in range(12)]
    theirs = [i for i in ids if get(engine, i).assignee_id == "op1"]
    assert len(theirs) == 4
    publish(engine, files(sla_yaml=SLA, employees_csv=employees({"op1": "2025-11-12"})))
    assert escalation.absence_sweep(engine, now=NOW) == 4
    worker(engine, SimClock(NOW), None).run_until_idle()
    assert [j.state for j in jobs(engine, escalation.ABSENCE_JOB)] == ["done"] * 4
    # The last turn went to op3 (the 12th appeal), so op1's appeals alternate from op2 on.
    assert [get(engine, i).assignee_id for i in theirs] == ["op2", "op3", "op2", "op3"]
    # The cursor the batch left continues for the next appeal routed.
    later = route_at(engine, "Ищу работу, есть вакансия?", NOW, deliver=False)
    assert get(engine, later).assignee_id == "op2"  # op1 is away; op3 had the last turn
