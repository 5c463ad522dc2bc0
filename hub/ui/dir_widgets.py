"""Plain inputs for the directory's nested values that used to be YAML boxes: a region's cities
(two lists, one city per line), a department's Bitrix24 target (entity, pipeline, stage) and a
filter's channels and kinds (checkboxes).

Each widget says whether it can show a stored value exactly (else the field stays a YAML box)
and writes a changed value back over the old YAML node, so unchanged values keep their bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from hub.ui.dir_yaml import styled
from hub.ui.rule_form import restyle
from hub.ui.rule_kinds import lines, read_target, same, scalars, target_fields

WIDGETS = ("cities", "target", "multi")


@dataclass
class Cities:
    plain: str = ""  # one city per line
    context: str = ""  # cities that only count after «в», «из», «г.»


def _city(item: Any) -> tuple[str, bool] | None:
    if isinstance(item, str) and item.strip() and "\n" not in item:
        return item.strip(), False
    if isinstance(item, dict) and set(item) <= {"name", "context"}:
        name, context = item.get("name"), item.get("context", False)
        named = isinstance(name, str) and name.strip() and "\n" not in name
        if named and isinstance(context, bool):
            return str(name).strip(), context
    return None


def shows(kind: str, value: Any) -> bool:
    """Whether the widget can show ``value`` exactly; if not, the field is a YAML box."""
    if value is None:
        return True
    if kind == "cities":
        return isinstance(value, list) and bool(value) and all(_city(c) for c in value)
    if kind == "target":
        return target_fields(value) is not None
    if kind == "multi":
        return scalars(value) is not None
    return True


def shown(kind: str, value: Any) -> Any:
    """The widget's inputs for a stored value."""
    if kind == "cities":
        pairs = [p for p in map(_city, value or []) if p]
        return Cities(
            "\n".join(n for n, ctx in pairs if not ctx), "\n".join(n for n, ctx in pairs if ctx)
        )
    if kind == "target":
        return target_fields(value) if value is not None else target_fields({})
    return scalars(value) or []


def from_form(kind: str, name: str, form: Mapping[str, str]) -> Any:
    """The widget's inputs as submitted (to show them again next to their errors)."""
    if kind == "cities":
        return Cities(form.get(name, ""), form.get(f"{name}-context", ""))
    if kind == "target":
        return {a: form.get(f"{name}-{a}", "") for a in ("entity", "pipeline", "stage")}
    return lines(form.get(name, ""))


def read(
    kind: str, name: str, form: Mapping[str, str], old: Any, required: bool
) -> tuple[Any, dict[str, list[str]]]:
    """(the new node or None to drop the key, errors by input name)."""
    if kind == "cities":
        pairs = [(c, False) for c in lines(form.get(name, ""))]
        pairs += [(c, True) for c in lines(form.get(f"{name}-context", ""))]
        if not pairs:
            return None, ({name: ["укажите хотя бы один город"]} if required else {})
        return _cities(pairs, old), {}
    if kind == "target":
        parts = (form.get(f"{name}-{a}", "") for a in ("entity", "pipeline", "stage"))
        target, error = read_target(*parts)
        if error:
            return None, {f"{name}-pipeline" if "воронка" in error else f"{name}-entity": [error]}
        if target is None:
            return None, {}
        if isinstance(old, CommentedMap) and same("target", old, target):
            return old, {}
        return restyle("target", target, old), {}
    picked = lines(form.get(name, ""))
    if not picked:
        return None, {}
    if old is not None and scalars(old) is not None and set(scalars(old) or []) == set(picked):
        return old, {}
    kept = [v for v in scalars(old) or [] if v in picked]
    return styled(kept + [v for v in picked if v not in kept], old), {}


def _cities(pairs: list[tuple[str, bool]], old: Any) -> Any:
    """The new list written over the old one in place: cities still there keep their node
    (and comments), removed ones go, new ones are added at the end."""
    wanted = Counter(pairs)
    if not isinstance(old, CommentedSeq) or not all(_city(c) for c in old):
        return styled([n if not ctx else {"name": n, "context": True} for n, ctx in pairs])
    if Counter(_city(c) for c in old) == wanted:
        return old
    left = Counter(wanted)
    drop: list[int] = []
    for index, item in enumerate(old):
        pair = _city(item)
        if pair is not None and left[pair] > 0:
            left[pair] -= 1
        else:
            drop.append(index)
    for index in reversed(drop):
        del old[index]
    for pair in pairs:
        if left[pair] > 0:
            left[pair] -= 1
            name, context = pair
            if context:
                node = CommentedMap({"name": name, "context": True})
                node.fa.set_flow_style()
                old.append(node)
            else:
                old.append(name)
    return old
