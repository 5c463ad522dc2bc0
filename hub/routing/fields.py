"""Typed reads of YAML values that report a wrong type at the value's line instead of raising."""

from __future__ import annotations

from typing import Any

from hub.routing.model import ENTITIES, TargetSpec, Where
from hub.routing.sources import Problems, YList, YMap


class Reader:
    """Reads one file's mappings; every complaint carries the file name and the line."""

    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems

    def where(self, node: Any, key: Any = None) -> Where:
        if isinstance(node, YMap):
            return Where(self.file, node.line_of(key) if key is not None else node.line)
        return Where(self.file, getattr(node, "line", 1))

    def error(self, node: Any, key: Any, message: str) -> None:
        self.problems.error(self.file, self.where(node, key).line, message)

    def mapping(self, node: Any, what: str, line: int = 1) -> YMap | None:
        if isinstance(node, YMap):
            return node
        if node is not None:
            self.problems.error(self.file, getattr(node, "line", line), f"{what}: ожидался словарь")
        return None

    def keys(self, node: YMap, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                hint = ", ".join(allowed)
                self.error(node, key, f"{what}: неизвестный ключ «{key}» (допустимы: {hint})")

    def text(self, node: YMap, key: str, what: str, *, required: bool = False) -> str:
        value = node.get(key)
        if value is None:
            if required:
                self.error(node, None, f"{what}: не задано «{key}»")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(node, key, f"{what}: «{key}» должно быть строкой")
            return ""
        return str(value).strip()

    def integer(self, node: YMap, key: str, what: str) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node, key, f"{what}: «{key}» должно быть целым числом, а не «{value}»")
            return None
        return value

    def flag(self, node: YMap, key: str, what: str) -> bool:
        value = node.get(key, False)
        if not isinstance(value, bool):
            self.error(node, key, f"{what}: «{key}» должно быть true или false")
            return False
        return value

    def strings(self, node: YMap, key: str, what: str) -> list[str]:
        """A list of strings; a single scalar counts as a list of one."""
        value = node.get(key)
        if value is None:
            return []
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return [str(value).strip()]
        if not isinstance(value, list):
            self.error(node, key, f"{what}: «{key}» должно быть списком")
            return []
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                line = value.line_of(index) if isinstance(value, YList) else node.line_of(key)
                self.problems.error(self.file, line, f"{what}: элемент «{key}» — не строка")
                continue
            out.append(str(item).strip())
        return out

    def target(self, node: Any, what: str, line: int) -> TargetSpec | None:
        """``{entity, pipeline, stage}``: deals live in a pipeline, leads have only a status."""
        target = self.mapping(node, f"{what}: target", line)
        if target is None:
            return None
        self.keys(target, ("entity", "pipeline", "stage"), f"{what}: target")
        entity = self.text(target, "entity", what) or "deal"
        if entity not in ENTITIES:
            self.error(target, "entity", f"{what}: entity «{entity}» — ожидалось deal или lead")
        pipeline = self.integer(target, "pipeline", what)
        if entity == "deal" and pipeline is None:
            pipeline = 0
        if entity == "lead" and pipeline is not None:
            self.error(target, "pipeline", f"{what}: у лида нет воронки (pipeline)")
            pipeline = None
        stage = self.text(target, "stage", what) or None
        if entity == "deal" and stage and pipeline and not stage.startswith(f"C{pipeline}:"):
            self.error(
                target,
                "stage",
                f"{what}: стадия «{stage}» не из воронки {pipeline} (ожидалось C{pipeline}:…)",
            )
        return TargetSpec(entity, pipeline, stage, self.where(target))
