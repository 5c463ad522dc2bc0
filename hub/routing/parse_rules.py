"""rules.yaml: ordered rules, each ``when`` (conditions, all must hold) and ``then`` (actions)."""

from __future__ import annotations

import re
from typing import Any

from hub.routing.fields import Reader
from hub.routing.model import KINDS, Actions, Condition, Rule
from hub.routing.schedule import parse_days, parse_time_range
from hub.routing.sources import YList, YMap

LIST_CONDITIONS = ("channel", "source", "kind", "words", "all_words", "not_words")
LIST_CONDITIONS += ("regex", "hashtags", "region", "topic")
CONDITIONS = LIST_CONDITIONS + ("rating", "time", "weekdays", "author", "fields")
AUTHOR_FIELDS = ("name", "phone", "email", "platform_id")
ACTIONS = ("topic", "region", "department", "assign", "target", "tags", "filter", "stop")


def parse_rules(reader: Reader, node: Any) -> list[Rule]:
    if node is None:
        return []
    if not isinstance(node, YList):
        reader.error(node, None, "rules: ожидался список правил")
        return []
    rules: list[Rule] = []
    for index, raw in enumerate(node):
        item = reader.mapping(raw, "правило", node.line_of(index))
        if item is None:
            continue
        rule_id = reader.text(item, "id", "правило", required=True)
        what = f"правило «{rule_id}»"
        reader.keys(item, ("id", "title", "when", "then"), what)
        conditions: list[Condition] = []
        when = item.get("when")
        if when is not None:
            when_map = reader.mapping(when, f"{what}: when", item.line_of("when"))
            if when_map is not None:
                conditions = _conditions(reader, when_map, what)
        then = reader.mapping(item.get("then"), f"{what}: then", item.line_of("then"))
        if then is None:
            reader.error(item, None, f"{what}: нет действий (then)")
            continue
        rules.append(
            Rule(
                id=rule_id,
                title=reader.text(item, "title", what) or rule_id,
                conditions=conditions,
                actions=_actions(reader, then, what),
                where=reader.where(item),
            )
        )
    return rules


def _conditions(reader: Reader, when: YMap, what: str) -> list[Condition]:
    reader.keys(when, CONDITIONS, what)
    out: list[Condition] = []
    for name in when:
        if name not in CONDITIONS:
            continue
        where = reader.where(when, name)
        value: Any
        if name in LIST_CONDITIONS:
            value = reader.strings(when, name, what)
            if name == "kind":
                for kind in value:
                    if kind not in KINDS:
                        reader.error(when, name, f"{what}: вид «{kind}» — один из {KINDS}")
            if name == "regex":
                value = [p for p in value if _regex_ok(reader, when, name, p, what)]
            if name == "hashtags":
                value = [h.lstrip("#") for h in value]
        else:
            try:
                value = _special(reader, when, name, what)
            except ValueError as exc:
                reader.error(when, name, f"{what}: {name}: {exc}")
                continue
            if value is None:
                continue
        out.append(Condition(name, value, where))
    return out


def _regex_ok(reader: Reader, node: YMap, key: str, pattern: str, what: str) -> bool:
    try:
        re.compile(pattern)
    except re.error as exc:
        reader.error(node, key, f"{what}: регулярное выражение «{pattern}» не компилируется: {exc}")
        return False
    return True


def _special(reader: Reader, when: YMap, name: str, what: str) -> Any:
    value = when[name]
    if name == "rating":
        return _rating(value)
    if name == "time":
        if not isinstance(value, str):
            raise ValueError('пишите время в кавычках: "09:00-18:00"')
        return parse_time_range(value)
    if name == "weekdays":
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        return parse_days(str(value))
    if name == "author":
        author = reader.mapping(value, f"{what}: author", when.line_of(name))
        if author is None:
            return None
        reader.keys(author, AUTHOR_FIELDS, f"{what}: author")
        checks: dict[str, str | bool] = {}
        for key, pattern in author.items():
            if isinstance(pattern, bool) or (
                isinstance(pattern, str) and _regex_ok(reader, author, key, pattern, what)
            ):
                checks[key] = pattern
            elif not isinstance(pattern, str):
                reader.error(author, key, f"{what}: author.{key} — шаблон или true/false")
        return checks
    fields = reader.mapping(value, f"{what}: fields", when.line_of(name))
    if fields is None:
        return None
    out: dict[str, list[str] | bool] = {}
    for key, expected in fields.items():
        if isinstance(expected, bool):
            out[str(key)] = expected
        elif isinstance(expected, list):
            out[str(key)] = [str(v) for v in expected]
        elif expected is None:
            reader.error(fields, key, f"{what}: fields.{key} — пустое значение")
        else:
            out[str(key)] = [str(expected)]
    return out


def _rating(value: Any) -> tuple[int, int]:
    """``2``, ``"1-2"`` or ``{min: 1, max: 2}``."""
    if isinstance(value, bool):
        raise ValueError("ожидалось число или диапазон 1-2")
    if isinstance(value, int):
        return value, value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", value):
        low, high = (int(v) for v in value.split("-"))
        return low, high
    if isinstance(value, YMap) and set(value) <= {"min", "max"}:
        low, high = value.get("min", 1), value.get("max", 5)
        if isinstance(low, int) and isinstance(high, int):
            return low, high
    raise ValueError(f"«{value}» — ожидалось число, «1-2» или {{min, max}}")


def _actions(reader: Reader, then: YMap, what: str) -> Actions:
    reader.keys(then, ACTIONS, f"{what}: then")
    actions = Actions(
        topic=reader.text(then, "topic", what) or None,
        region=reader.text(then, "region", what) or None,
        department=reader.text(then, "department", what) or None,
        tags=reader.strings(then, "tags", what),
        filter=reader.text(then, "filter", what) or None,
        stop=reader.flag(then, "stop", what),
        lines={str(key): then.line_of(key) for key in then},
    )
    assign = then.get("assign")
    if assign is not None:
        spec = reader.mapping(assign, f"{what}: assign", then.line_of("assign"))
        if spec is not None:
            reader.keys(spec, ("employee", "pool"), f"{what}: assign")
            actions.assign_employee = reader.text(spec, "employee", what) or None
            actions.assign_pool = reader.text(spec, "pool", what) or None
            if bool(actions.assign_employee) == bool(actions.assign_pool):
                reader.error(then, "assign", f"{what}: assign — либо employee, либо pool")
    if "target" in then:
        actions.target = reader.target(then["target"], what, then.line_of("target"))
    if not any(
        (actions.topic, actions.region, actions.department, actions.assign_employee)
        + (actions.assign_pool, actions.target, actions.tags, actions.filter, actions.stop)
    ):
        reader.error(then, None, f"{what}: then не содержит ни одного действия")
    return actions
