"""The compiled sla.yaml: which target an appeal gets and when it is due, in working time.

Built once per rule-set version beside the engine; ``apply`` runs at the end of every decision
and touches no database. The clock of an appeal is that of its responsible: their zone
(employees.csv ``timezone``, else their first region's), the calendar of their first region
(calendar.yaml ``regions``, else ``default``) and the target's hours. Nobody responsible: the
appeal's region. Everything used is written into the trace, so a deadline explains itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.routing.calendar import CalendarSet
from hub.routing.model import Employee, RuleSetModel
from hub.routing.schedule import DAY_LABELS
from hub.routing.sla import ACTIONS, SlaModel, SlaTarget
from hub.routing.types import AppealInput, Decision, TraceStep
from hub.routing.worktime import NoCalendar, WorkClock

_ClockKey = tuple[str, str, str, bool]


class SlaPolicy:
    def __init__(
        self,
        model: RuleSetModel,
        *,
        employee_zones: Mapping[str, ZoneInfo],
        region_zones: Mapping[str, ZoneInfo],
        default_zone: ZoneInfo,
    ) -> None:
        assert model.sla is not None
        self.sla: SlaModel = model.sla
        self.calendars: CalendarSet = model.calendar or CalendarSet()
        self.employees = {e.id: e for e in model.employees}
        self.employee_zones = employee_zones
        self.region_zones = region_zones
        self.default_zone = default_zone
        self._clocks: dict[_ClockKey, WorkClock] = {}
        self._when = [(t, [(k, frozenset(v)) for k, v in t.when.items()]) for t in self.sla.targets]

    def match(self, decision: Decision, appeal: AppealInput) -> SlaTarget | None:
        """The first target whose conditions all hold."""
        facts = {
            "topic": [decision.topic or "unknown"],
            "department": [decision.department or ""],
            "rule": [t.rule or "" for t in decision.trace if t.step == "rule"],
            "channel": [appeal.channel],
            "kind": [appeal.kind],
            "region": [decision.region or "unknown"],
        }
        for target, when in self._when:
            if all(not values.isdisjoint(facts[key]) for key, values in when):
                return target
        return None

    def clock(
        self, target: SlaTarget, employee: Employee | None, region: str | None
    ) -> tuple[WorkClock, dict[str, str]]:
        """The responsible's clock and a description of it for the trace."""
        if employee is not None:
            zone = self.employee_zones.get(employee.id, self.default_zone)
            home = next((r for r in employee.regions if r != "*"), None)
        else:
            zone = self.region_zones.get(region or "", self.default_zone)
            home = region
        calendar = self.calendars.for_region(home) if target.holidays else None
        if target.employee_hours and employee is not None:
            hours_key, intervals, hours_text = (
                f"employee:{employee.id}",
                employee.hours,
                employee.hours_text,
            )
        elif target.hours is not None:
            hours_key, intervals, hours_text = (
                f"target:{target.id}",
                target.hours,
                target.hours_text,
            )
        else:
            hours_key, intervals, hours_text = "default", self.sla.hours, self.sla.hours_text
        key = (hours_key, calendar.code if calendar else "", zone.key, target.holidays)
        clock = self._clocks.get(key)
        if clock is None:
            days = calendar if calendar is not None else NoCalendar()
            clock = self._clocks[key] = WorkClock(intervals, zone, days)
        about = {
            "zone": zone.key,
            "hours": hours_text or "круглосуточно",
            "calendar": calendar.code if calendar else "",
            "calendar_name": calendar.name if calendar else "без праздников",
        }
        return clock, about

    def apply(self, decision: Decision, appeal: AppealInput, moment: datetime) -> None:
        """Set the deadline and the escalation plan of a routed (not filtered) decision."""
        if decision.filtered is not None:
            return
        target = self.match(decision, appeal)
        if target is None:
            return
        employee = self.employees.get(decision.assignee.id) if decision.assignee else None
        clock, about = self.clock(target, employee, decision.region)
        day = clock.day_minutes()
        length = target.target.resolve(day)
        name = target.escalation or self.sla.default_escalation
        steps = self.sla.escalations.get(name, [])
        due, *moments = clock.add_many(moment, [length, *(s.offset(length, day) for s in steps)])
        # In time order: a share of the target and a shift from the deadline may cross.
        timed = sorted(zip(moments, range(len(steps)), steps, strict=True), key=lambda t: t[:2])
        plan = [
            {"do": s.action, "at": at.isoformat(), "label": f"{s.at}: {ACTIONS[s.action]}"}
            for at, _i, s in timed
        ]
        decision.reply_due_at = due.isoformat()
        decision.sla_target_minutes = round(length / timedelta(minutes=1))
        decision.sla_rule = target.id
        decision.escalation_plan = plan
        message = (
            f"Цель первого ответа — {target.target.text(day)} (цель «{target.title}»): "
            f"ответить до {_when(due.astimezone(clock.zone))} ({about['zone']}); "
            f"часы «{about['hours']}», календарь «{about['calendar_name']}»."
        )
        if plan:  # the moments are in ``data``; formatting them all would double the cost
            message += f" Эскалация «{name}»: {'; '.join(p['label'] for p in plan)}."
        data: dict[str, Any] = {**about, "due": decision.reply_due_at, "plan": plan}
        decision.trace.append(TraceStep("sla", message, rule=target.id, data=data))


def _when(local: datetime) -> str:
    """«чт 05.11.2026 09:30» without strftime, which costs more than the rest of a decision."""
    return (
        f"{DAY_LABELS[local.weekday()]} {local.day:02d}.{local.month:02d}.{local.year} "
        f"{local.hour:02d}:{local.minute:02d}"
    )
