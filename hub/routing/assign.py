"""Who gets the appeal: pools, strategies, working hours, absences, capacity and fallbacks.

The engine stays pure: anything that lives outside the rule set (whose turn it is in a
round robin, how many open appeals each employee has) comes through ``AssignmentState``.
Open-appeal counts are asked for once per decision, for every candidate at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from hub.routing.model import Employee, Pool, RuleSetModel, Where
from hub.routing.schedule import DAY_LABELS, on_duty, zone

EXCLUDED = "уже был ответственным"  # the reason an ``exclude``-d candidate is passed over
STRATEGY_LABELS = {
    "round_robin": "по очереди",
    "least_open": "у кого меньше открытых обращений",
    "first_available": "первый свободный по списку",
}


class AssignmentState(Protocol):
    def open_counts(self, employee_ids: Collection[str]) -> Mapping[str, int]:
        """Open appeals per employee (routed or delivered, no first reply yet)."""
        ...

    def last_assigned(self, pool_key: str) -> str | None: ...

    def advance(self, pool_key: str, employee_id: str) -> None:
        """Move a round-robin cursor; the DB state shares it between workers."""
        ...

    def assigned(self, employee_id: str) -> None:
        """The decision gave this employee one more open appeal."""
        ...


@dataclass
class MemoryAssignmentState:
    """For ``clienthub route --rules DIR``, the tests and the benchmark."""

    counts: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    count_queries: int = 0

    def open_counts(self, employee_ids: Collection[str]) -> Mapping[str, int]:
        self.count_queries += 1
        return {i: self.counts.get(i, 0) for i in employee_ids}

    def last_assigned(self, pool_key: str) -> str | None:
        return self.cursors.get(pool_key)

    def advance(self, pool_key: str, employee_id: str) -> None:
        self.cursors[pool_key] = employee_id

    def assigned(self, employee_id: str) -> None:
        self.counts[employee_id] = self.counts.get(employee_id, 0) + 1


@dataclass
class AssignOutcome:
    employee: Employee | None
    department: str | None
    message: str
    data: dict[str, object]
    via: str  # "pool", "head", "fallback"


class Assigner:
    def __init__(self, model: RuleSetModel, region_zones: Mapping[str, str]) -> None:
        self.employees = {e.id: e for e in model.employees}
        self.pools = {p.code: p for p in model.pools}
        self.heads = {d.code: d.head for d in model.departments}
        self.fallback = model.settings.fallback_employee
        default = model.settings.default_timezone
        self.zones: dict[str, ZoneInfo] = {}
        for emp in model.employees:
            name = emp.timezone or next(
                (region_zones[r] for r in emp.regions if r in region_zones), default
            )
            self.zones[emp.id] = zone(name)
        by_department: dict[str, list[Employee]] = defaultdict(list)
        for emp in model.employees:
            if emp.id != self.heads.get(emp.department):
                by_department[emp.department].append(emp)
        self.members: dict[str, list[Employee]] = {}
        for pool in model.pools:
            ids = pool.members
            listed = [self.employees[i] for i in ids if i in self.employees]
            self.members[pool.code] = listed if ids else by_department.get(pool.department, [])
        self.department_members = dict(by_department)
        # Both depend only on the rule set; filled on first use, shared by worker threads.
        self._candidates: dict[tuple[str, str | None, str | None], list[Employee]] = {}
        self._chains: dict[str, list[Pool]] = {}

    def pool_for_department(self, department: str) -> Pool:
        """A rule named a department but no one in it: its members, least loaded first."""
        return Pool(
            f"отдел:{department}", f"отдел {department}", "least_open", [], department,
            False, False, [], Where("departments.yaml", 0),
        )  # fmt: skip

    def pool_for_employee(self, employee_id: str) -> Pool:
        """A rule named an employee: they if they can, else their head, else the fallback."""
        emp = self.employees[employee_id]
        return Pool(
            f"сотрудник:{emp.id}", emp.name, "first_available", [emp.id], emp.department,
            False, False, [], emp.where,
        )  # fmt: skip

    def chain(self, pool_code: str) -> list[Pool]:
        """The pool and its fallbacks, breadth first, each once."""
        found = self._chains.get(pool_code)
        if found is None:
            found = self._chains[pool_code] = self._chain(pool_code)
        return found

    def _chain(self, pool_code: str) -> list[Pool]:
        out: list[Pool] = []
        todo = [pool_code]
        while todo:
            code = todo.pop(0)
            pool = self.pools.get(code)
            if pool is None or pool in out:
                continue
            out.append(pool)
            todo.extend(pool.fallback)
        return out

    def candidates(self, pool: Pool, region: str | None, topic: str | None) -> list[Employee]:
        """Members who may take the appeal by region and topic; cached, as it depends only on
        the rule set (a pool of 116 filtered by region on every decision adds up)."""
        key = (pool.code, region if pool.by_region else None, topic if pool.by_topic else None)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = self._filter(pool, region, topic)
        return found

    def _filter(self, pool: Pool, region: str | None, topic: str | None) -> list[Employee]:
        if pool.code in self.members:
            members = self.members[pool.code]
        elif pool.members:
            members = [self.employees[i] for i in pool.members if i in self.employees]
        else:
            members = self.department_members.get(pool.department, [])
        if pool.by_region:
            members = [e for e in members if region and ("*" in e.regions or region in e.regions)]
        if pool.by_topic:
            members = [e for e in members if topic and ("*" in e.topics or topic in e.topics)]
        return members

    def why_not(
        self,
        emp: Employee,
        now: datetime,
        counts: Mapping[str, int],
        local_times: dict[str, datetime] | None = None,
    ) -> str | None:
        """Why this employee cannot take an appeal now, or None when they can."""
        tz = self.zones[emp.id]
        if local_times is None:
            local = now.astimezone(tz)
        else:
            local = local_times.get(tz.key) or local_times.setdefault(tz.key, now.astimezone(tz))
        today = local.date()
        for start, end in emp.absences:
            if start <= today <= end:
                return f"отсутствует ({start:%d.%m}–{end:%d.%m})"
        if emp.hours and not on_duty(emp.hours, local):
            return (
                f"вне рабочего времени: там сейчас {DAY_LABELS[local.weekday()]} {local:%H:%M} "
                f"({tz.key}), график «{emp.hours_text}»"
            )
        if emp.capacity is not None and counts.get(emp.id, 0) >= emp.capacity:
            return f"на пределе: {counts.get(emp.id, 0)} открытых из {emp.capacity}"
        return None

    def assign(
        self,
        pools: list[Pool],
        *,
        region: str | None,
        topic: str | None,
        now: datetime,
        state: AssignmentState,
        exclude: Collection[str] = (),
    ) -> AssignOutcome:
        """Walks the pools in order; in each, candidates are examined in the order the
        strategy prefers them, and the first who can take the appeal gets it. Those
        examined and passed over are the skipped ones, each with the reason. ``exclude``:
        employees who must not get it (the one it is taken from, on escalation or absence)."""
        lists = [(pool, self.candidates(pool, region, topic)) for pool in pools]
        need_counts = any(p.strategy == "least_open" for p in pools) or any(
            e.capacity is not None for _, members in lists for e in members
        )
        ids = {e.id for _, members in lists for e in members}
        counts = state.open_counts(sorted(ids)) if need_counts and ids else {}
        local_times: dict[str, datetime] = {}
        skipped: list[dict[str, str]] = []
        parts: list[str] = []
        for pool, members in lists:
            if not members:
                parts.append(
                    f"в пуле «{pool.title}» нет подходящих сотрудников" + _scope(pool, region)
                )
                continue
            cursor_key, order = self._order(pool, members, region, counts, state)
            chosen = None
            for emp in order:
                reason = (
                    EXCLUDED if emp.id in exclude else self.why_not(emp, now, counts, local_times)
                )
                if reason is None:
                    chosen = emp
                    break
                skipped.append(
                    {"id": emp.id, "name": emp.name, "pool": pool.code, "reason": reason}
                )
            if chosen is None:
                parts.append(f"в пуле «{pool.title}» все {len(members)} пропущены")
                continue
            if cursor_key is not None:
                state.advance(cursor_key, chosen.id)
            state.assigned(chosen.id)
            message = f"Назначен {chosen.name} ({chosen.id}) {_source(pool)}."
            if parts:
                message = "; ".join(parts).capitalize() + ". " + message
            message += _skipped_text(skipped)
            data = {"pool": pool.code, "strategy": pool.strategy, "skipped": skipped}
            return AssignOutcome(chosen, chosen.department, message, data, "pool")
        department = pools[0].department if pools else None
        return self._last_resort(department, parts, skipped, now, exclude)

    def _order(
        self,
        pool: Pool,
        members: list[Employee],
        region: str | None,
        counts: Mapping[str, int],
        state: AssignmentState,
    ) -> tuple[str | None, list[Employee]]:
        """Candidates in the order the strategy takes them, and the round-robin cursor key."""
        if pool.strategy == "least_open":
            ranked = sorted(enumerate(members), key=lambda p: (counts.get(p[1].id, 0), p[0]))
            return None, [emp for _, emp in ranked]
        if pool.strategy == "first_available":
            return None, members
        key = f"{pool.code}@{region}" if pool.by_region and region else pool.code
        last = state.last_assigned(key)
        ids = [e.id for e in members]
        start = ids.index(last) + 1 if last in ids else 0
        return key, members[start:] + members[:start]

    def _last_resort(
        self,
        department: str | None,
        parts: list[str],
        skipped: list[dict[str, str]],
        now: datetime,
        exclude: Collection[str] = (),
    ) -> AssignOutcome:
        head_id = self.heads.get(department or "")
        head = self.employees.get(head_id or "")
        data: dict[str, object] = {"skipped": skipped}
        prefix = ("; ".join(parts).capitalize() + ". ") if parts else ""
        if head is not None and head.id in exclude:
            parts.append(f"руководитель {head.name} {EXCLUDED}")
            prefix = "; ".join(parts).capitalize() + ". "
        elif head is not None:
            absent = self.why_not(head, now, {})
            if absent is None or not absent.startswith("отсутствует"):
                message = f"{prefix}Назначен руководитель отдела {head.name} ({head.id})."
                return AssignOutcome(
                    head, head.department, message + _skipped_text(skipped), data, "head"
                )
            parts.append(f"руководитель {head.name} {absent}")
            prefix = "; ".join(parts).capitalize() + ". "
        fallback = self.employees.get(self.fallback)
        if fallback is not None and fallback.id in exclude:
            message = f"{prefix}Передать некому: резервный {fallback.name} {EXCLUDED}."
            return AssignOutcome(None, None, message + _skipped_text(skipped), data, "none")
        who = fallback.name if fallback else self.fallback
        message = f"{prefix}Назначен резервный ответственный {who}."
        return AssignOutcome(
            fallback,
            fallback.department if fallback else None,
            message + _skipped_text(skipped),
            data,
            "fallback",
        )


def _source(pool: Pool) -> str:
    if pool.code.startswith("сотрудник:"):
        return "— указан правилом"
    how = STRATEGY_LABELS[pool.strategy]
    if pool.code.startswith("отдел:"):
        return f"из отдела {pool.department} — {how}"
    return f"из пула «{pool.title}» — {how}"


def _scope(pool: Pool, region: str | None) -> str:
    if pool.by_region and not region:
        return " (пул региональный, а регион не определён)"
    if pool.by_region:
        return f" для региона {region}"
    return ""


def _skipped_text(skipped: list[dict[str, str]], limit: int = 5) -> str:
    if not skipped:
        return ""
    shown = "; ".join(f"{s['name']} — {s['reason']}" for s in skipped[:limit])
    more = f" и ещё {len(skipped) - limit}" if len(skipped) > limit else ""
    return f" Пропущены: {shown}{more}."
