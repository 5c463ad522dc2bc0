"""sla.yaml: first-reply targets and the escalation steps taken when one slips.

Targets are tried top to bottom and the first whose ``when`` holds sets the appeal's target
(a target without ``when`` is the default). ``when`` keys are ``topic``, ``department``,
``rule`` (a rule of rules.yaml that fired), ``channel``, ``kind`` and ``region``; a list means
"any of". The target is working time: ``30m``, ``4h`` or ``1d`` (one full working day of the
schedule), counted by ``hours`` (the file's default, a target's own, or ``employee`` for the
responsible's hours from employees.csv) in the responsible's zone and under their region's
calendar (calendar.yaml). ``holidays: false`` makes a schedule run through holidays too.

Escalation steps fire at a share of the target (``80%``) or relative to the deadline
(``+1h``, ``-10m``), also in working time, and do one thing each: ``notify_assignee``,
``notify_head``, ``reassign`` (the next one of the same pool) or ``overdue_stage`` (move the
deal to the stage ``overdue_stages`` names for its pipeline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hub.routing.fields import Reader
from hub.routing.model import Interval, RuleSetModel, Where
from hub.routing.schedule import parse_hours
from hub.routing.sources import Problems, YList, YMap

FILE = "sla.yaml"
ACTIONS = {
    "notify_assignee": "напомнить ответственному",
    "notify_head": "известить руководителя отдела",
    "reassign": "передать следующему в пуле",
    "overdue_stage": "перевести сделку в стадию просроченных",
}
WHEN_KEYS = ("topic", "department", "rule", "channel", "kind", "region")
EMPLOYEE_HOURS = ("employee", "сотрудника", "сотрудник")
_UNITS = {
    "m": 1, "min": 1, "мин": 1, "минут": 1, "минуты": 1, "минута": 1,
    "h": 60, "ч": 60, "час": 60, "часа": 60, "часов": 60,
}  # fmt: skip
_DAY_UNITS = {"d", "д", "дн", "день", "дня", "дней", "рабочий день", "рабочих дня", "рабочих дней"}
_DURATION_RE = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([a-zа-яё ]+)$")
_SHIFT_RE = re.compile(r"^([+-])\s*(.+)$")
_PERCENT_RE = re.compile(r"^(\d+(?:[.,]\d+)?)\s*%$")


@dataclass(frozen=True)
class Duration:
    """Working minutes, or working days (their length depends on the schedule)."""

    minutes: float = 0.0
    days: float = 0.0

    def resolve(self, day_minutes: int) -> timedelta:
        return timedelta(minutes=self.minutes + self.days * day_minutes)

    def text(self, day_minutes: int | None = None) -> str:
        """«30 мин рабочего времени», «1 рабочий день (9 ч)»."""
        if self.days:
            n = self.days
            word = (
                "рабочий день" if n == 1 else ("рабочих дня" if n in (2, 3, 4) else "рабочих дней")
            )
            size = f" ({_clock(self.days * day_minutes)})" if day_minutes else ""
            return f"{_num(n)} {word}{size}"
        return f"{_clock(self.minutes)} рабочего времени"


@dataclass
class Step:
    at: str  # as written
    action: str
    percent: float | None  # share of the target, from the start
    shift: Duration | None  # from the deadline
    negative: bool
    where: Where

    def offset(self, target: timedelta, day_minutes: int) -> timedelta:
        """Working time from the start of the clock to this step."""
        if self.percent is not None:
            return target * (self.percent / 100)
        assert self.shift is not None
        shift = self.shift.resolve(day_minutes)
        return max(timedelta(0), target - shift if self.negative else target + shift)


@dataclass
class SlaTarget:
    id: str
    title: str
    when: dict[str, list[str]]
    target: Duration
    hours_text: str  # "" -> the file's default hours; EMPLOYEE_HOURS -> the responsible's
    hours: list[Interval] | None  # None: not the target's own
    holidays: bool
    escalation: str  # "" -> the file's default escalation
    where: Where
    when_lines: dict[str, int] = field(default_factory=dict)

    @property
    def employee_hours(self) -> bool:
        return self.hours_text.lower() in EMPLOYEE_HOURS


@dataclass
class SlaModel:
    hours_text: str = "пн-пт 09:00-18:00"
    hours: list[Interval] = field(default_factory=list)
    targets: list[SlaTarget] = field(default_factory=list)
    escalations: dict[str, list[Step]] = field(default_factory=dict)
    default_escalation: str = ""
    overdue_stages: dict[str, str] = field(default_factory=dict)  # pipeline id or "lead"
    where: Where = Where(FILE, 1)
    lines: dict[str, int] = field(default_factory=dict)  # section -> line


def parse_duration(value: Any) -> Duration:
    """``30m``, ``30 мин``, ``4h``, ``4 ч``, ``1d``, ``1 рабочий день``; a number is minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("время не может быть отрицательным")
        return Duration(minutes=float(value))
    text = str(value).strip().lower().replace("ё", "е")
    match = _DURATION_RE.match(text)
    if match:
        number = float(match.group(1).replace(",", "."))
        unit = match.group(2).strip()
        if unit in _DAY_UNITS:
            return Duration(days=number)
        if unit in _UNITS:
            return Duration(minutes=number * _UNITS[unit])
    raise ValueError(f"не понимаю время «{value}» (пишите 30m, 4h, 1d или 30 мин, 4 ч, 1 д)")


def parse_sla(reader: Reader, root: Any) -> SlaModel:
    model = SlaModel()
    if not isinstance(root, YMap):
        if root is not None:
            reader.error(root, None, "sla.yaml: ожидался словарь")
        return model
    keys = ("hours", "targets", "escalations", "default_escalation", "overdue_stages")
    reader.keys(root, keys, FILE)
    model.where = reader.where(root)
    model.lines = {k: root.line_of(k) for k in root}
    model.hours_text = reader.text(root, "hours", FILE) or model.hours_text
    try:
        model.hours = parse_hours(model.hours_text)
    except ValueError as exc:
        reader.error(root, "hours", f"hours: {exc}")
    escalations = reader.mapping(
        root.get("escalations"), "escalations", model.lines.get("escalations", 1)
    )
    for code, steps in (escalations or {}).items():
        model.escalations[str(code)] = _steps(reader, str(code), steps, escalations.line_of(code))
    model.default_escalation = reader.text(root, "default_escalation", FILE)
    stages = reader.mapping(
        root.get("overdue_stages"), "overdue_stages", model.lines.get("overdue_stages", 1)
    )
    for key, stage in (stages or {}).items():
        model.overdue_stages[str(key)] = "" if stage is None else str(stage).strip()
    targets = root.get("targets")
    if not isinstance(targets, YList):
        reader.error(root, "targets" if "targets" in root else None, "sla.yaml: нет списка targets")
        return model
    for index, raw in enumerate(targets):
        item = reader.mapping(raw, "цель", targets.line_of(index))
        if item is not None:
            model.targets.append(_target(reader, item))
    return model


def _steps(reader: Reader, code: str, node: Any, line: int) -> list[Step]:
    what = f"эскалация «{code}»"
    if not isinstance(node, YList):
        reader.problems.error(reader.file, line, f"{what}: ожидался список шагов")
        return []
    steps: list[Step] = []
    for index, raw in enumerate(node):
        item = reader.mapping(raw, f"{what}: шаг", node.line_of(index))
        if item is None:
            continue
        reader.keys(item, ("at", "do"), f"{what}: шаг")
        where = reader.where(item)
        action = reader.text(item, "do", what, required=True)
        if action and action not in ACTIONS:
            reader.error(item, "do", f"{what}: действие «{action}» — одно из {', '.join(ACTIONS)}")
            continue
        at = reader.text(item, "at", what, required=True)
        try:
            percent, shift, negative = _parse_at(at)
        except ValueError as exc:
            reader.error(item, "at", f"{what}: {exc}")
            continue
        if action:
            steps.append(Step(at, action, percent, shift, negative, where))
    return steps


def _parse_at(text: str) -> tuple[float | None, Duration | None, bool]:
    text = text.strip()
    match = _PERCENT_RE.match(text)
    if match:
        return float(match.group(1).replace(",", ".")), None, False
    if text in ("0", "+0", "-0"):
        return None, Duration(), False
    shift = _SHIFT_RE.match(text)
    if not shift:
        raise ValueError(f"момент «{text}» — пишите долю цели (80%) или сдвиг от срока (+1h, -10m)")
    return None, parse_duration(shift.group(2)), shift.group(1) == "-"


def _target(reader: Reader, item: YMap) -> SlaTarget:
    tid = reader.text(item, "id", "цель", required=True)
    what = f"цель «{tid}»"
    reader.keys(item, ("id", "title", "when", "target", "hours", "holidays", "escalation"), what)
    when: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    node = item.get("when")
    if node is not None:
        cond = reader.mapping(node, f"{what}: when", item.line_of("when"))
        if cond is not None:
            reader.keys(cond, WHEN_KEYS, f"{what}: when")
            for key in cond:
                if key in WHEN_KEYS:
                    when[key] = reader.strings(cond, key, what)
                    lines[key] = cond.line_of(key)
    duration = Duration()
    if "target" not in item:
        reader.error(item, None, f"{what}: не задано «target» (например, 30m)")
    else:
        try:
            duration = parse_duration(item["target"])
        except ValueError as exc:
            reader.error(item, "target", f"{what}: {exc}")
        if duration == Duration() and "target" in item:
            reader.error(item, "target", f"{what}: цель должна быть больше нуля")
    hours_text = reader.text(item, "hours", what)
    hours: list[Interval] | None = None
    if hours_text and hours_text.lower() not in EMPLOYEE_HOURS:
        try:
            hours = parse_hours(hours_text)
        except ValueError as exc:
            reader.error(item, "hours", f"{what}: часы: {exc}")
    holidays = reader.flag(item, "holidays", what) if "holidays" in item else True
    return SlaTarget(
        id=tid,
        title=reader.text(item, "title", what) or tid,
        when=when,
        target=duration,
        hours_text=hours_text,
        hours=hours,
        holidays=holidays,
        escalation=reader.text(item, "escalation", what),
        where=reader.where(item),
        when_lines=lines,
    )


def check_sla(model: RuleSetModel, sla: SlaModel, problems: Problems) -> None:
    """References to the rest of the directory; steps in time order; stages that exist."""
    known = {
        "topic": {t.code for t in model.topics} | {"unknown"},
        "department": {d.code for d in model.departments},
        "rule": {r.id for r in model.rules},
        "region": {r.code for r in model.regions} | {"unknown"},
        "kind": {"message", "comment", "review", "call", "form", "email"},
        "channel": set(model.settings.channels),
    }
    unknown = {
        "topic": "неизвестная тема",
        "department": "неизвестный отдел",
        "rule": "неизвестное правило",
        "region": "неизвестный регион",
        "kind": "неизвестный вид",
        "channel": "неизвестный канал",
    }
    seen: dict[str, int] = {}
    for index, target in enumerate(sla.targets):
        w, what = target.where, f"цель «{target.id}»"
        if target.id in seen:
            problems.error(w.file, w.line, f"{what}: id повторяется (строка {seen[target.id]})")
        seen.setdefault(target.id, w.line)
        for key, values in target.when.items():
            line = target.when_lines.get(key, w.line)
            if not values:
                problems.error(w.file, line, f"{what}: пустой список «{key}» — не сработает")
            for value in values:
                if known[key] and value not in known[key]:
                    problems.error(w.file, line, f"{what}: {unknown[key]} «{value}»")
        escalation = target.escalation or sla.default_escalation
        if escalation and escalation not in sla.escalations:
            problems.error(w.file, w.line, f"{what}: нет эскалации «{escalation}»")
        if not target.when and index < len(sla.targets) - 1:
            later = ", ".join(t.id for t in sla.targets[index + 1 :])
            problems.error(w.file, w.line, f"{what}: без when — цели ниже не сработают ({later})")
    if sla.default_escalation and sla.default_escalation not in sla.escalations:
        line = sla.lines.get("default_escalation", 1)
        problems.error(FILE, line, f"default_escalation: нет эскалации «{sla.default_escalation}»")
    for code, steps in sla.escalations.items():
        _check_order(code, steps, problems)
        if any(s.action == "overdue_stage" for s in steps) and not sla.overdue_stages:
            line = sla.lines.get("escalations", 1)
            problems.error(FILE, line, f"эскалация «{code}»: overdue_stage без overdue_stages")
    _check_stages(model, sla, problems)


def _check_order(code: str, steps: list[Step], problems: Problems) -> None:
    """Steps must not go back in time, so the sweep can take them one after another. Shares
    come before the deadline shifts they could be compared with only at 100 %."""
    last: tuple[float, float] | None = None
    for step in steps:
        if step.percent is not None:
            key = (step.percent, 0.0) if step.percent < 100 else (100.0, step.percent - 100)
        else:
            assert step.shift is not None
            size = step.shift.minutes + step.shift.days * 1440
            key = (100.0, -size if step.negative else size)
        if last is not None and key < last:
            problems.error(
                step.where.file,
                step.where.line,
                f"эскалация «{code}»: шаг «{step.at}» раньше предыдущего — шаги идут по порядку",
            )
        last = key if last is None else max(last, key)


def _check_stages(model: RuleSetModel, sla: SlaModel, problems: Problems) -> None:
    b24 = model.bitrix24
    line = sla.lines.get("overdue_stages", 1)
    for key, stage in sla.overdue_stages.items():
        if not stage:
            problems.error(FILE, line, f"overdue_stages: у «{key}» не указана стадия")
            continue
        if key == "lead":
            if b24.present and stage not in b24.lead_statuses:
                problems.error(
                    FILE, line, f"overdue_stages: статуса лида «{stage}» нет в bitrix24.yaml"
                )
            continue
        if not key.isdigit():
            problems.error(FILE, line, f"overdue_stages: «{key}» — номер воронки или lead")
            continue
        pipeline = int(key)
        if pipeline and not stage.startswith(f"C{pipeline}:"):
            problems.error(FILE, line, f"overdue_stages: стадия «{stage}» не из воронки {pipeline}")
        elif b24.present and stage not in b24.stages.get(pipeline, set()):
            problems.error(FILE, line, f"overdue_stages: стадии «{stage}» нет в воронке {pipeline}")


def _clock(minutes: float) -> str:
    if minutes >= 60 and minutes % 60 == 0:
        return f"{_num(minutes / 60)} ч"
    return f"{_num(minutes)} мин"


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}".replace(".", ",")
