"""What a rule's condition and action rows can be, and how a row and a ``when``/``then`` key
turn into each other.

The row kinds follow the rule model (``hub.routing.parse_rules``): one kind per condition or
action key, except that ``words``/``all_words``/``not_words`` are one kind with an operator, and
``author``/``fields``/``assign`` split into one row per sub-key. A value a row cannot show
exactly (a wrong type, an empty list, ``stop: false``) is not turned into a row at all: it stays
in the expert YAML box, so every rule stays editable and unedited rules keep their bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hub.routing.model import KINDS
from hub.routing.parse_rules import AUTHOR_FIELDS, LIST_CONDITIONS, _rating
from hub.routing.schedule import DAY_LABELS, parse_days, parse_time_range


def N_(message: str) -> str:
    """Marks a label for the catalogue; the template translates it."""
    return message


@dataclass(frozen=True)
class Kind:
    code: str  # the choice in the row's first select
    label: str
    widget: str  # pick, one, check, days, lines, rating, time, pattern, field, text, target, flag
    source: str = ""  # the draft's list a pick/one/check widget offers (Choices attribute)
    help: str = ""


CONDITION_KINDS = (
    Kind("channel", N_("Канал"), "pick", "channels"),
    Kind("source", N_("Источник"), "lines", help=N_("канал:id или id, по одному на строке")),
    Kind("kind", N_("Вид обращения"), "check", "kinds"),
    Kind(
        "words", N_("Текст: слова и фразы"), "lines", help=N_("в любой форме, по одному на строке")
    ),
    Kind(
        "regex", N_("Текст: шаблон"), "lines", help=N_("регулярные выражения, по одному на строке")
    ),
    Kind("hashtags", N_("Хештеги"), "lines", help=N_("по одному на строке, без #")),
    Kind("rating", N_("Оценка отзыва"), "rating"),
    Kind("region", N_("Регион"), "pick", "regions_any"),
    Kind("topic", N_("Тема"), "pick", "topics_any"),
    Kind("time", N_("Время суток"), "time", help=N_("по часовому поясу региона")),
    Kind("weekdays", N_("Дни недели"), "days"),
    Kind("author.name", N_("Автор: имя"), "pattern"),
    Kind("author.phone", N_("Автор: телефон"), "pattern"),
    Kind("author.email", N_("Автор: e-mail"), "pattern"),
    Kind("author.platform_id", N_("Автор: id на платформе"), "pattern"),
    Kind("fields", N_("Поле формы или звонка"), "field", help=N_("значения по одному на строке")),
)
ACTION_KINDS = (
    Kind("topic", N_("Назначить тему"), "one", "topics"),
    Kind("region", N_("Назначить регион"), "one", "regions"),
    Kind("department", N_("Отдел"), "one", "departments"),
    Kind("assign.employee", N_("Ответственный сотрудник"), "one", "employees"),
    Kind("assign.pool", N_("Пул сотрудников"), "one", "pools"),
    Kind("target", N_("Цель в Битрикс24"), "target"),
    Kind("tags", N_("Метки"), "lines", help=N_("по одной на строке")),
    Kind("filter", N_("Отфильтровать с причиной"), "text"),
    Kind("stop", N_("Остановить разбор: следующие правила не смотреть"), "flag"),
)
KINDS_OF = {"when": {k.code: k for k in CONDITION_KINDS}, "then": {k.code: k for k in ACTION_KINDS}}
OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "words": (
        ("any", N_("есть любое из")), ("all", N_("есть все")), ("none", N_("нет ни одного из")),
    ),
    "pattern": (
        ("match", N_("совпадает с шаблоном")), ("present", N_("указан")),
        ("absent", N_("не указан")),
    ),
    "field": (
        ("equals", N_("равно одному из")), ("present", N_("заполнено")),
        ("absent", N_("не заполнено")),
    ),
}  # fmt: skip
WORD_KEYS = {"any": "words", "all": "all_words", "none": "not_words"}
WORD_OPS = {v: k for k, v in WORD_KEYS.items()}
ENTITY_CHOICES = ("deal", "lead")
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")


@dataclass
class Row:
    """One condition or action as its inputs hold it: strings, exactly as typed."""

    token: str
    code: str = ""
    op: str = ""
    key: str = ""  # fields: the field's name
    text: str = ""  # lines, a pattern, a reason
    picked: list[str] = field(default_factory=list)  # selected options, checked boxes
    low: str = ""  # rating from, time from
    high: str = ""
    entity: str = ""  # target
    pipeline: str = ""
    stage: str = ""

    def kind(self, part: str) -> Kind | None:
        return KINDS_OF[part].get(self.code)

    def blank(self) -> bool:
        return not any((self.code, self.key, self.text.strip(), self.picked, self.low, self.high))

    def mentions(self) -> set[str]:
        """Names and values a checker message may quote to point at this row."""
        names = {self.code, *self.code.split("."), self.key, f"fields.{self.key}"}
        if self.code == "words":
            names.add(WORD_KEYS.get(self.op, "words"))
        values = {*self.picked, *lines(self.text), self.text.strip(), self.stage, self.pipeline}
        return {v for v in names | values if v}


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def scalars(value: Any) -> list[str] | None:
    """A scalar or a non-empty list of scalars as strings (how ``Reader.strings`` reads it)."""
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in items):
        return None
    out = [str(v).strip() for v in items]
    return None if any("\n" in v or not v for v in out) else out


def _hhmm(value: Any) -> str:
    return f"{value:%H:%M}"


def condition_rows(key: str, value: Any, new_token: Any) -> list[Row] | None:
    """The rows showing ``when[key]``, or None when only YAML can show it exactly."""
    if key in WORD_OPS:
        items = scalars(value)
        if items is None:
            return None
        return [Row(new_token(), "words", op=WORD_OPS[key], text="\n".join(items))]
    if key in LIST_CONDITIONS:
        items = scalars(value)
        if items is None:
            return None
        if key in ("channel", "region", "topic"):
            return [Row(new_token(), key, picked=items)]
        if key == "kind":
            return [Row(new_token(), key, picked=items)] if set(items) <= set(KINDS) else None
        return [Row(new_token(), key, text="\n".join(items))]
    try:
        if key == "rating":
            low, high = _rating(value)
            return [Row(new_token(), key, low=str(low), high=str(high))]
        if key == "time" and isinstance(value, str):
            start, end = parse_time_range(value)
            return [Row(new_token(), key, low=_hhmm(start), high=_hhmm(end))]
        if key == "weekdays" and (isinstance(value, str) or scalars(value)):
            text = ",".join(scalars(value) or []) if isinstance(value, list) else str(value)
            return [Row(new_token(), key, picked=[DAY_LABELS[d] for d in sorted(parse_days(text))])]
    except ValueError:
        return None
    if key in ("author", "fields") and isinstance(value, dict) and value:
        return _sub_rows(key, value, new_token)
    return None


def _sub_rows(key: str, value: dict[Any, Any], new_token: Any) -> list[Row] | None:
    rows: list[Row] = []
    for sub, expected in value.items():
        if key == "author" and sub not in AUTHOR_FIELDS:
            return None
        code, name = (f"author.{sub}", "") if key == "author" else ("fields", str(sub))
        if isinstance(expected, bool):
            rows.append(Row(new_token(), code, "present" if expected else "absent", name))
            continue
        items = scalars(expected) if key == "fields" else None
        if key == "author" and isinstance(expected, str) and "\n" not in expected and expected:
            items = [expected]
        if items is None:
            return None
        op = "match" if key == "author" else "equals"
        rows.append(Row(new_token(), code, op, name, text="\n".join(items)))
    return rows


def action_rows(key: str, value: Any, new_token: Any) -> list[Row] | None:
    """The rows showing ``then[key]``, or None when only YAML can show it exactly."""
    if key in ("topic", "region", "department", "filter"):
        items = scalars(value)
        if items is None or isinstance(value, list):
            return None
        if key == "filter":
            return [Row(new_token(), key, text=items[0])]
        return [Row(new_token(), key, picked=items)]
    if key == "tags":
        items = scalars(value)
        return None if items is None else [Row(new_token(), key, text="\n".join(items))]
    if key == "stop":
        return [Row(new_token(), key)] if value is True else None
    if key == "assign" and isinstance(value, dict) and len(value) == 1:
        ((sub, who),) = value.items()
        items = scalars(who)
        if sub not in ("employee", "pool") or items is None or isinstance(who, list):
            return None
        return [Row(new_token(), f"assign.{sub}", picked=items)]
    if key == "target":
        shown = target_fields(value)
        return None if shown is None else [Row(new_token(), key, **shown)]
    return None


def target_fields(value: Any) -> dict[str, str] | None:
    """``{entity, pipeline, stage}`` as three inputs, or None if they cannot show it."""
    if not isinstance(value, dict) or not set(value) <= {"entity", "pipeline", "stage"}:
        return None
    entity, pipeline, stage = value.get("entity"), value.get("pipeline"), value.get("stage")
    if entity is not None and entity not in ENTITY_CHOICES:
        return None
    if pipeline is not None and (isinstance(pipeline, bool) or not isinstance(pipeline, int)):
        return None
    if stage is not None and (scalars(stage) is None or isinstance(stage, list)):
        return None
    if any(k in value and value[k] is None for k in ("entity", "pipeline", "stage")):
        return None
    return {
        "entity": entity or "",
        "pipeline": "" if pipeline is None else str(pipeline),
        "stage": "" if stage is None else str(stage).strip(),
    }


def read_target(entity: str, pipeline: str, stage: str) -> tuple[dict[str, Any] | None, str]:
    """(the target, an error): pipeline must be a whole number."""
    out: dict[str, Any] = {}
    if entity.strip():
        if entity.strip() not in ENTITY_CHOICES:
            return None, "сделка (deal) или лид (lead)"
        out["entity"] = entity.strip()
    if pipeline.strip():
        if not pipeline.strip().isdigit():
            return None, "воронка — целое число"
        out["pipeline"] = int(pipeline.strip())
    if stage.strip():
        out["stage"] = stage.strip()
    return (out or None), ""


def read_row(part: str, row: Row) -> tuple[str, Any, str]:
    """(yaml key, value, error) of one row; ``author.phone`` reads as ``("author",
    {"phone": …})`` to be merged with the other author rows."""
    kind = row.kind(part)
    if kind is None:
        return "", None, "выберите условие" if part == "when" else "выберите действие"
    key, _, sub = kind.code.partition(".")
    widget = kind.widget
    if widget in ("pick", "check", "one"):
        if not row.picked:
            return key, None, "выберите значение"
        value: Any = row.picked[0] if len(row.picked) == 1 else list(row.picked)
        return (f"{key}", {sub: value}, "") if sub else (key, value, "")
    if widget == "days":
        days = [d for d in DAY_LABELS if d in row.picked]
        return (key, days, "") if days else (key, None, "отметьте хотя бы один день")
    if widget == "rating":
        return _read_rating(row)
    if widget == "time":
        if not (_HHMM.match(row.low.strip()) and _HHMM.match(row.high.strip())):
            return key, None, "укажите время «с» и «до», например 22:00 и 08:00"
        text = f"{row.low.strip()}-{row.high.strip()}"
        try:
            parse_time_range(text)
        except ValueError as exc:
            return key, None, str(exc)
        return key, text, ""
    if widget == "target":
        target, error = read_target(row.entity, row.pipeline, row.stage)
        if not (target or error):
            error = "укажите сущность, воронку или стадию"
        return key, target, error
    if widget == "flag":
        return key, True, ""
    if widget == "text":
        return (key, row.text.strip(), "") if row.text.strip() else (key, None, "укажите причину")
    if widget in ("pattern", "field"):
        return _read_sub(key, sub, row)
    items = lines(row.text)
    if not items:
        return key, None, "укажите хотя бы одно значение"
    if key == "regex":
        for pattern in items:
            if error := _regex_error(pattern):
                return key, None, error
    return (WORD_KEYS.get(row.op, "words") if key == "words" else key), items, ""


def _read_rating(row: Row) -> tuple[str, Any, str]:
    low, high = row.low.strip() or row.high.strip(), row.high.strip() or row.low.strip()
    if not (low.isdigit() and high.isdigit()):
        return "rating", None, "оценка — целые числа от 1 до 5"
    if int(low) > int(high):
        return "rating", None, "«от» больше, чем «до»"
    return "rating", (int(low) if low == high else f"{int(low)}-{int(high)}"), ""


def _read_sub(key: str, sub: str, row: Row) -> tuple[str, Any, str]:
    name = sub or row.key.strip()
    if not name:
        return key, None, "укажите имя поля"
    if row.op in ("present", "absent"):
        return key, {name: row.op == "present"}, ""
    items = [row.text.strip()] if key == "author" and row.text.strip() else lines(row.text)
    if not items:
        return key, None, "укажите шаблон" if key == "author" else "укажите значение"
    if key == "author":
        error = _regex_error(items[0])
        return key, (None if error else {name: items[0]}), error
    return key, {name: items[0] if len(items) == 1 else items}, ""


def _regex_error(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"шаблон «{pattern}» не компилируется: {exc}"
    return ""


def same(key: str, old: Any, new: Any) -> bool:
    """Whether the rule parser reads ``old`` and ``new`` under ``key`` alike (list order and
    ``[a]`` vs ``a`` aside), so the old node, with its quotes and style, can stay."""
    return _norm(key, old) == _norm(key, new)


def _norm(key: str, value: Any) -> Any:
    if isinstance(value, dict) and key in ("author", "fields", "assign", "target"):
        return {str(k): _norm(f"{key}.", v) for k, v in value.items()}
    items = scalars(value)
    if key.endswith(".") and key != "target." and items is not None:  # sub-values
        return frozenset(items) if key == "fields." else tuple(items)
    if key in (*LIST_CONDITIONS, *WORD_OPS) and items is not None:
        return frozenset(i.lstrip("#") if key == "hashtags" else i for i in items)
    try:
        if key == "rating":
            return ("rating", _rating(value))
        if key == "time" and isinstance(value, str):
            return ("time", parse_time_range(value))
        if key == "weekdays":
            text = ",".join(scalars(value) or ["?"]) if isinstance(value, list) else str(value)
            return ("days", parse_days(text))
    except ValueError:
        pass
    return ("raw", repr(_plain(value)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)
