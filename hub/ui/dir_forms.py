"""The fields of each directory entity as a browser form, and back.

Each section lists its fields with a kind that says how the value is shown and read:
``str`` and ``int`` one line; ``bool`` a checkbox; ``list`` comma-separated; ``lines`` one
item per line (patterns, phrases with commas); ``words`` "слово = вес" per line; ``conditions``
and ``actions`` a rule's rows (``hub/ui/rule_form.py``); ``cities``, ``target`` and ``multi``
plain inputs for nested values (``hub/ui/dir_widgets.py``); ``yaml`` a YAML fragment. A nested
value a widget cannot show exactly, and any key the spec does not list, is shown as YAML, so
nothing in a file is hidden from the form and nothing becomes uneditable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from ruamel.yaml.comments import CommentedMap

from hub.ui import dir_widgets, rule_form
from hub.ui.dir_yaml import parse_yaml_text, styled, to_yaml_text

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    label: str
    help: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()
    source: str = ""  # multi: the Choices list offered (hub/ui/dir_choices.py)


F = FieldSpec


def N_(message: str) -> str:
    """Marks a label for the catalogue (pybabel -k N_); the template translates it."""
    return message


SPECS: dict[str, list[FieldSpec]] = {
    "topics": [
        F("title", "str", N_("Название"), required=True),
        F("words", "words", N_("Слова"), N_("по одному на строке: «слово = вес»; начальная форма")),
        F(
            "negative",
            "lines",
            N_("Стоп-слова"),
            N_("по одному на строке: с ними тема не выбирается"),
        ),
        F("min_score", "int", N_("Порог"), N_("пусто — общий порог из ruleset.yaml")),
    ],
    "regions": [
        F("name", "str", N_("Название"), required=True),
        F("timezone", "str", N_("Часовой пояс"), N_("IANA: Europe/Moscow, Asia/Yekaterinburg…")),
        F("area_codes", "list", N_("Телефонные коды"), N_("через запятую: 495, 499")),
        F("cities", "cities", N_("Города"), N_("по одному на строке"), required=True),
        F("aliases", "list", N_("Другие названия"), N_("через запятую")),
        F("sources", "list", N_("Источники региона"), N_("канал:id через запятую")),
    ],
    "departments": [
        F("name", "str", N_("Название"), required=True),
        F("head", "str", N_("Руководитель"), N_("id сотрудника")),
        F("target", "target", N_("Цель в Битрикс24 по умолчанию")),
    ],
    "pools": [
        F("title", "str", N_("Название")),
        F(
            "strategy",
            "choice",
            N_("Стратегия"),
            choices=("round_robin", "least_open", "first_available"),
        ),
        F("members", "list", N_("Сотрудники"), N_("id через запятую; пусто — весь отдел")),
        F("department", "str", N_("Отдел")),
        F("by_region", "bool", N_("Только ведущие регион обращения")),
        F("by_topic", "bool", N_("Только ведущие тему обращения")),
        F("fallback", "list", N_("Резервные пулы"), N_("через запятую, по порядку")),
    ],
    "filters": [
        F("reason", "str", N_("Причина"), required=True),
        F("channel", "multi", N_("Каналы"), N_("ничего не отмечено — все"), source="channels"),
        F("kind", "multi", N_("Виды"), N_("ничего не отмечено — все"), source="kinds"),
        F("hashtags", "list", N_("Хештеги"), N_("без #")),
        F("words", "lines", N_("Слова и фразы"), N_("по одному на строке")),
        F("patterns", "lines", N_("Регулярные выражения"), N_("по одному на строке")),
        F("phones", "lines", N_("Телефоны (чёрный список)"), N_("по одному на строке")),
        F("platform_ids", "lines", N_("Id на платформах"), N_("канал:id, по одному на строке")),
        F("emails", "lines", N_("Адреса и домены"), N_("адрес или @домен, по одному на строке")),
    ],
    "rules": [
        F("title", "str", N_("Название")),
        F("when", "conditions", N_("Условия"), N_("должны выполниться все; нет условий — всегда")),
        F("then", "actions", N_("Действия"), N_("выполняются по порядку сверху вниз")),
    ],
}
TITLE_KEYS = ("title", "name", "reason")


STRUCTURED = ("conditions", "actions")


def specs_for(section: str, entity: dict[str, Any] | None) -> list[FieldSpec]:
    """The section's fields, then any other key the entity has, as YAML. A widget that cannot
    show the entity's value exactly gives way to a YAML box."""
    known = [
        F(s.name, "yaml", s.label, s.help)
        if s.kind in dir_widgets.WIDGETS
        and not dir_widgets.shows(s.kind, (entity or {}).get(s.name))
        else s
        for s in SPECS[section]
    ]
    names = {f.name for f in known} | {"id"}
    extra = [F(str(k), "yaml", str(k)) for k in (entity or {}) if str(k) not in names]
    return [*known, *extra]


def show(spec: FieldSpec, value: Any) -> Any:
    """What a field's inputs start with: text, or a widget's or rule block's inputs."""
    if spec.kind in STRUCTURED:
        return rule_form.block_of(spec.name, value)
    if spec.kind in dir_widgets.WIDGETS:
        return dir_widgets.shown(spec.kind, value)
    if value is None:
        return ""
    if spec.kind == "list":
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.kind == "lines":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if spec.kind == "words" and isinstance(value, dict):
        return "\n".join(f"{k} = {v}" for k, v in value.items())
    if spec.kind == "yaml":
        return to_yaml_text(value)
    if spec.kind == "bool":
        return "1" if value else ""
    return str(value)


def show_form(spec: FieldSpec, form: dict[str, str]) -> Any:
    """A field's inputs as submitted, to show them again next to their errors."""
    if spec.kind in STRUCTURED:
        return rule_form.block_from_form(spec.name, form)
    if spec.kind in dir_widgets.WIDGETS:
        return dir_widgets.from_form(spec.kind, spec.name, form)
    return form.get(spec.name, "")


def _split(text: str, by_lines: bool) -> list[str]:
    parts = text.splitlines() if by_lines else re.split(r"[,\n]", text)
    return [p.strip() for p in parts if p.strip()]


def read(spec: FieldSpec, raw: str) -> tuple[Any, str | None]:
    """(value, error). None as value means: leave the key out."""
    text = raw.strip()
    if spec.kind == "bool":
        return (True if text else None), None
    if not text:
        return None, (N_("обязательное поле") if spec.required else None)
    if spec.kind == "int":
        return (int(text), None) if text.isdigit() else (None, N_("нужно целое число"))
    if spec.kind in ("list", "lines"):
        return _split(text, spec.kind == "lines"), None
    if spec.kind == "choice":
        if text not in spec.choices:
            return None, f"одно из: {', '.join(spec.choices)}"
        return text, None
    if spec.kind == "words":
        words: dict[str, int] = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            word, _, weight = line.rpartition("=") if "=" in line else (line, "", "1")
            weight = weight.strip()
            if not weight.isdigit():
                return None, f"строка {n}: вес «{weight}» — не целое число"
            words[word.strip()] = int(weight)
        return words, None
    if spec.kind == "yaml":
        try:
            return parse_yaml_text(text), None
        except pyyaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"строка {mark.line + 1}: " if mark else ""
            return None, f"{where}ошибка YAML: {getattr(exc, 'problem', None) or exc}"
    return text, None


def apply(
    entity: CommentedMap, specs: list[FieldSpec], form: dict[str, str]
) -> tuple[CommentedMap, dict[str, list[str]]]:
    """The entity with the form's values (in place, so order and comments stay); errors by
    field name."""
    errors: dict[str, list[str]] = {}
    for spec in specs:
        if spec.kind in STRUCTURED or spec.kind in dir_widgets.WIDGETS:
            _apply_nested(entity, spec, form, errors)
            continue
        value, error = read(spec, form.get(spec.name, ""))
        if error:
            errors.setdefault(spec.name, []).append(error)
            continue
        if value is None:
            entity.pop(spec.name, None)
        elif entity.get(spec.name) != value:
            entity[spec.name] = styled(value, entity.get(spec.name))
    return entity, errors


def _apply_nested(
    entity: CommentedMap, spec: FieldSpec, form: dict[str, str], errors: dict[str, list[str]]
) -> None:
    """A rule block or widget read back over the entity's own node (changed in place)."""
    old = entity.get(spec.name)
    if spec.kind in STRUCTURED:
        node, found = rule_form.read_part(spec.name, form, old)
    else:
        node, found = dir_widgets.read(spec.kind, spec.name, form, old, spec.required)
    if found:
        errors.update(found)
    elif node is None:
        entity.pop(spec.name, None)
    elif node is not old:
        entity[spec.name] = node


def check_key(key: str, existing: list[str], is_new: bool) -> str | None:
    if not ID_RE.match(key):
        return "латиница, цифры, «-», «_», «.»; начинается с буквы или цифры"
    if is_new and key in existing:
        return "такой уже есть"
    return None


def field_of_line(key_lines: dict[str, int], line: int) -> str | None:
    """The field whose text holds ``line``: the last one starting at or before it."""
    best, best_line = None, 0
    for name, start in key_lines.items():
        if best_line <= start <= line:
            best, best_line = name, start
    return best
