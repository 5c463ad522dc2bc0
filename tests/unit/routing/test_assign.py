"""Assignment: strategies, working hours, absences, capacity and the fallback chain."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.routing.assign import MemoryAssignmentState
from tests.unit.routing.helpers import WEDNESDAY_11_MSK, compiled, decide, step

EMPLOYEES = """\
id,name,bitrix_user_id,department,position,regions,topics,hours,timezone,absences,capacity
reserve,Резервная очередь,10,reserve,,*,*,,,,
head,Глава Линии,11,hotline,,*,*,пн-пт 09:00-18:00,Europe/Moscow,,
op1,Оператор Один,12,hotline,,*,*,ежедневно 08:00-20:00,Europe/Moscow,,
op2,Оператор Два,13,hotline,,*,*,ежедневно 08:00-20:00,Europe/Moscow,2025-11-10..2025-11-14,
op3,Оператор Три,14,hotline,,*,*,ежедневно 08:00-20:00,Europe/Moscow,,2
night,Ночной Оператор,15,hotline,,*,*,ежедневно 20:00-08:00,Europe/Moscow,,
qhead,Качество Глава,20,quality,,*,*,пн-пт 09:00-18:00,Europe/Moscow,,
qsam,Качество Самара,22,quality,,samara,*,пн-пт 09:00-18:00,Europe/Samara,,
qsam2,Качество Самара Два,23,quality,,samara,*,пн-пт 09:00-18:00,Europe/Samara,,
"""
POOLS = """\
pools:
  rr:
    strategy: round_robin
    members: [op1, op2, op3]
  least:
    strategy: least_open
    members: [op1, op3]
  first:
    strategy: first_available
    members: [op2, op1, op3]
  night:
    strategy: first_available
    members: [night]
    fallback: [rr]
  quality:
    strategy: least_open
    department: quality
    by_region: true
  nobody:
    strategy: first_available
    members: [op2]
    department: hotline
"""


def ruleset(pool: str = "", employee: str = "") -> object:
    assign = f"{{pool: {pool}}}" if pool else f"{{employee: {employee}}}"
    return compiled(
        employees_csv=EMPLOYEES,
        pools_yaml=POOLS,
        rules_yaml=f"rules:\n  - id: a\n    then: {{assign: {assign}, stop: true}}\n",
    )


class TestStrategies:
    def test_round_robin_skips_the_absent_and_wraps(self) -> None:
        rs = ruleset("rr")
        state = MemoryAssignmentState()
        picks = [decide(rs, state=state).assignee.id for _ in range(4)]  # type: ignore[attr-defined,union-attr]
        assert picks == ["op1", "op3", "op1", "op3"]  # op2 is on leave
        assert state.cursors == {"rr": "op3"}

    def test_round_robin_continues_from_the_shared_cursor(self) -> None:
        state = MemoryAssignmentState(cursors={"rr": "op1"})
        assert decide(ruleset("rr"), state=state).assignee.id == "op3"  # type: ignore[union-attr]

    def test_least_open(self) -> None:
        state = MemoryAssignmentState(counts={"op1": 5, "op3": 1})
        decision = decide(ruleset("least"), state=state)
        assert decision.assignee.id == "op3"  # type: ignore[union-attr]
        assert state.count_queries == 1

    def test_first_available(self) -> None:
        decision = decide(ruleset("first"))
        assert decision.assignee.id == "op1"  # type: ignore[union-attr]
        assert "Оператор Два — отсутствует (10.11–14.11)" in step(decision, "assign")


class TestSkips:
    def test_capacity(self) -> None:
        state = MemoryAssignmentState(counts={"op1": 9, "op3": 2})
        decision = decide(ruleset("least"), state=state)
        assert decision.assignee.id == "op1"  # type: ignore[union-attr]
        skipped = decision.trace[-2].data["skipped"]
        assert skipped == [
            {
                "id": "op3",
                "name": "Оператор Три",
                "pool": "least",
                "reason": "на пределе: 2 открытых из 2",
            }
        ]

    def test_out_of_hours_goes_down_the_fallback_chain(self) -> None:
        decision = decide(ruleset("night"))  # 11:00: the night operator is off
        message = step(decision, "assign")
        assert decision.assignee.id == "op1"  # type: ignore[union-attr]
        assert "вне рабочего времени" in message and "Ночной Оператор" in message

    def test_working_hours_in_the_employees_zone(self) -> None:
        # 17:30 in Moscow is 18:30 in Samara: the Samara experts have gone home.
        late = datetime(2025, 11, 12, 14, 30, tzinfo=UTC)
        decision = decide(ruleset("quality"), "в Самаре", now=late)
        assert decision.assignee.id == "qhead"  # type: ignore[union-attr]
        assert "Europe/Samara" in step(decision, "assign")

    def test_region_pool_takes_only_those_covering_the_region(self) -> None:
        state = MemoryAssignmentState(counts={"qsam": 3})
        decision = decide(ruleset("quality"), "в Самаре", state=state)
        assert decision.assignee.id == "qsam2"  # type: ignore[union-attr]

    def test_region_pool_without_region_goes_to_the_head(self) -> None:
        decision = decide(ruleset("quality"), "без города")
        assert decision.assignee.id == "qhead"  # type: ignore[union-attr]
        assert "регион не определён" in step(decision, "assign")


class TestLastResort:
    def test_department_head(self) -> None:
        decision = decide(ruleset("nobody"))
        assert decision.assignee.id == "head"  # type: ignore[union-attr]
        assert "руководитель отдела" in step(decision, "assign")

    def test_head_out_of_hours_still_takes_it(self) -> None:
        friday_night = datetime(2025, 11, 14, 18, 0, tzinfo=UTC)  # 21:00 in Moscow, op2 on leave
        decision = decide(ruleset("nobody"), now=friday_night)
        assert decision.assignee.id == "head"  # type: ignore[union-attr]

    def test_absent_head_gives_way_to_the_global_fallback(self) -> None:
        head = "head,Глава Линии,11,hotline,,*,*,пн-пт 09:00-18:00,Europe/Moscow,"
        employees = EMPLOYEES.replace(head + ",", head + "2025-11-01..2025-11-30,")
        rs = compiled(
            employees_csv=employees,
            pools_yaml=POOLS,
            rules_yaml="rules:\n  - id: a\n    then: {assign: {pool: nobody}}\n",
        )
        decision = decide(rs)
        assert decision.assignee.id == "reserve"  # type: ignore[union-attr]
        assert "резервный ответственный" in step(decision, "assign")

    def test_named_employee_absent_goes_to_their_head(self) -> None:
        decision = decide(ruleset(employee="op2"))
        assert decision.assignee.id == "head"  # type: ignore[union-attr]
        assert "отсутствует" in step(decision, "assign")

    def test_named_employee(self) -> None:
        decision = decide(ruleset(employee="op3"), now=WEDNESDAY_11_MSK)
        assert decision.assignee.id == "op3"  # type: ignore[union-attr]
        assert decision.assignee.bitrix_user_id == 14  # type: ignore[union-attr]


def test_open_counts_asked_once_for_the_whole_chain() -> None:
    state = MemoryAssignmentState(counts={"night": 0})
    decide(ruleset("night"), state=state)  # night pool -> rr pool; op3 has a capacity
    assert state.count_queries == 1
