"""A rule's ``when`` and ``then`` as rows of inputs plus an expert YAML box, and back.

Reading the form re-uses every YAML node the admin did not change (``rule_kinds.same``), so an
unedited rule saves to the same bytes and an edited one changes only its own keys. Checker
messages about a rule land on the row they are about (``locate``), not on the whole block.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml as pyyaml
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import ScalarString

from hub.ui.dir_yaml import parse_yaml_text, styled, to_yaml_text
from hub.ui.rule_kinds import (
    KINDS_OF,
    N_,
    OPS,
    Row,
    action_rows,
    condition_rows,
    lines,
    read_row,
    same,
)

PARTS = ("when", "then")
_MERGED = ("author", "fields", "assign")  # one YAML key, one row per sub-key
_PICKED_ORDER = ("channel", "kind", "region", "topic")  # the form sends them in option order
ATTRS = ("op", "key", "text", "picked", "low", "high", "entity", "pipeline", "stage")


def new_token() -> str:
    return secrets.token_hex(3)


@dataclass
class Block:
    part: str  # "when" or "then"
    rows: list[Row] = field(default_factory=list)
    expert: str = ""  # YAML of whatever no row shows

    def row_key(self, row: Row) -> str:
        return f"{self.part}-r{row.token}"


def block_of(part: str, value: Any) -> Block:
    """The rows and expert text showing a rule's ``when`` or ``then`` as stored."""
    if value is None:
        return Block(part, [Row(new_token())] if part == "then" else [])
    if not isinstance(value, dict):
        return Block(part, [], to_yaml_text(value))
    to_rows = condition_rows if part == "when" else action_rows
    rows: list[Row] = []
    rest = CommentedMap()
    for key, item in value.items():
        got = to_rows(str(key), item, new_token) if isinstance(key, str) else None
        if got is None:
            rest[key] = item
        else:
            rows.extend(got)
    return Block(part, rows, to_yaml_text(rest) if rest else "")


def row_from(form: Mapping[str, str], part: str, token: str) -> Row:
    prefix = f"{part}-r{token}-"
    values = {a: form.get(prefix + a, "") for a in ATTRS}
    picked = [p for p in lines(values.pop("picked"))]
    return Row(token, form.get(prefix + "field", "").strip(), picked=picked, **values)


def block_from_form(part: str, form: Mapping[str, str]) -> Block:
    """The block as the admin submitted it, rows in page order. A plain ``when``/``then``
    field (the old form, scripts) counts as the expert box."""
    pattern = re.compile(rf"^{part}-r([0-9a-z]+)-field$")
    tokens = [m.group(1) for k in form if (m := pattern.match(k))]
    rows = [row_from(form, part, t) for t in tokens]
    return Block(part, rows, form.get(f"{part}-yaml", form.get(part, "")))


def read_block(block: Block, old: Any) -> tuple[Any, dict[str, list[str]]]:
    """(the new ``when``/``then`` node or None to drop the key, errors by input name)."""
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {}
    for row in block.rows:
        if row.blank():
            continue
        key, value, error = read_row(block.part, row)
        if not error and key in _MERGED:
            known = data.setdefault(key, {})
            sub = next(iter(value))
            if sub in known or (key == "assign" and known):
                error = "уже задано выше: либо сотрудник, либо пул, один раз"
            else:
                known.update(value)
                continue
        elif not error and key in data:
            error = "такое уже есть выше — объедините значения в одной строке"
        if error:
            errors[block.row_key(row)] = [error]
        else:
            data[key] = value
    extra, error = _expert(block, bool(data))
    if error:
        errors[f"{block.part}-yaml"] = [error]
    elif extra is not None and not isinstance(extra, dict):
        return (None if errors else extra), errors
    for key, value in (extra or {}).items():
        if str(key) in data:
            errors.setdefault(f"{block.part}-yaml", []).append(f"«{key}» уже задано в строках")
        data[str(key)] = value
    if not data and block.part == "then" and not errors:
        errors[block.part] = ["нужно хотя бы одно действие"]
    if errors:
        return None, errors
    return merge(old, data), {}


def _expert(block: Block, has_rows: bool) -> tuple[Any, str]:
    text = block.expert.replace("\r\n", "\n")
    if not text.strip():
        return None, ""
    try:
        value = parse_yaml_text(text)
    except pyyaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"строка {mark.line + 1}: " if mark else ""
        return None, f"{where}ошибка YAML: {getattr(exc, 'problem', None) or exc}"
    if has_rows and value is not None and not isinstance(value, dict):
        return None, "здесь нужен словарь «ключ: значение»"
    return value, ""


def merge(old: Any, data: dict[str, Any]) -> Any:
    """``data`` written over ``old`` in place: unchanged keys keep their node, removed keys go,
    new keys are added at the end; None when nothing is left."""
    if not isinstance(old, CommentedMap):
        return styled(data) if data else None
    if not data and not old:
        return old
    if not data:
        return None
    names = {str(k): k for k in old}
    for name, key in names.items():
        if name not in data:
            del old[key]
    for name, value in data.items():
        key = names.get(name, name)
        if key in old and same(name, old[key], value):
            continue
        old[key] = restyle(name, value, old.get(key))
    return old


def restyle(key: str, value: Any, like: Any) -> Any:
    """A changed value written like the one it replaces: same flow style and quotes, and a
    picked list keeps the order its items had."""
    if isinstance(value, dict) and isinstance(like, CommentedMap):
        for name in [str(k) for k in like]:
            if name not in value:
                del like[name]
        for name, item in value.items():
            if name in like and same(f"{key}.", like[name], item):
                continue
            like[name] = restyle(f"{key}.", item, like.get(name))
        return like
    if isinstance(value, list):
        if key in _PICKED_ORDER and isinstance(like, list):
            kept = [str(v) for v in like if str(v) in value]
            value = kept + [v for v in value if v not in kept]
        return styled(value, like)
    if isinstance(value, str) and isinstance(like, ScalarString):
        return type(like)(value)
    return styled(value)


def read_part(part: str, form: Mapping[str, str], old: Any) -> tuple[Any, dict[str, list[str]]]:
    return read_block(block_from_form(part, form), old)


# --- where a checker message belongs ----------------------------------------------------------

_PREFIX = re.compile(r"^(правило|отдел|регион) «[^»]*»: ")
_KEYWORDS = {
    "target": r"\bentity\b|воронк|стади|статус|\bлид",
    "assign.employee": r"\bassign\b",
    "assign.pool": r"\bassign\b",
    "rating": r"рейтинг|оценк",
    "time": r"^time:|время",
    "weekdays": r"^weekdays:|\bдн[иея]\b|\bдень\b",
    "kind": r"\bвид",
    "regex": r"регулярн|шаблон",
    "filter": r"^filter\b",
    "stop": r"^stop\b",
    "tags": r"^tags\b",
}


def locate(message: str, blocks: Mapping[str, Block], preferred: str) -> str | None:
    """The input name a checker message about a rule's ``when``/``then`` belongs to: a row whose
    value or key it quotes or names, else the expert box that holds what it quotes."""
    text = _PREFIX.sub("", message)
    quoted = set(re.findall(r"«([^»]*)»", re.sub(r"правил[оа] «[^»]*»", "", text)))
    order = (
        ["then"] if text.startswith("then") else [preferred, *(p for p in PARTS if p != preferred)]
    )
    for part in order:
        block = blocks.get(part)
        if block is None:
            continue
        for row in block.rows:
            if quoted & row.mentions():
                return block.row_key(row)
        for row in block.rows:
            kind = row.kind(part)
            pattern = _KEYWORDS.get(kind.code if kind else "")
            if kind and kind.widget == "pattern":
                pattern = rf"\b{re.escape(kind.code)}\b|^author:"
            if kind and kind.widget == "field":
                pattern = rf"fields\.{re.escape(row.key.strip())}\b|^fields:"
            if pattern and re.search(pattern, text):
                return block.row_key(row)
        if block.expert and any(_token_in(q, block.expert) for q in quoted):
            return f"{part}-yaml"
    return None


def _token_in(word: str, text: str) -> bool:
    return bool(word) and re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def target_input(message: str) -> str | None:
    """Which of a target's three inputs a checker message is about."""
    text = _PREFIX.sub("", message)
    if re.search(r"стади|статус", text):
        return "stage"
    if re.search(r"воронк|pipeline", text):
        return "pipeline"
    if re.search(r"\bentity\b", text):
        return "entity"
    return None


DAY_TITLES = {
    "пн": N_("пн"), "вт": N_("вт"), "ср": N_("ср"), "чт": N_("чт"), "пт": N_("пт"),
    "сб": N_("сб"), "вс": N_("вс"),
}  # fmt: skip


def template_values() -> dict[str, Any]:
    """What the row templates need besides the rows: the kinds, operators and day names."""
    return {
        "kinds": lambda part: list(KINDS_OF[part].values()),
        "ops": OPS,
        "day_titles": DAY_TITLES,
        "target_input": target_input,
    }
