"""Reading YAML and CSV while keeping line numbers, so every problem points at file:line."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule directory; ``level`` is "error" or "warning"."""

    file: str
    line: int
    message: str
    level: str = "error"

    def __str__(self) -> str:
        tag = "" if self.level == "error" else "предупреждение: "
        return f"{self.file}:{self.line}: {tag}{self.message}"


class Problems(list[Problem]):
    def error(self, file: str, line: int, message: str) -> None:
        self.append(Problem(file, line, message))

    def warning(self, file: str, line: int, message: str) -> None:
        self.append(Problem(file, line, message, "warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self if p.level == "error"]


class YMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]
    duplicates: list[tuple[Any, int]]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> YMap:
    loader.flatten_mapping(node)
    result = YMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.duplicates = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in result:
            result.duplicates.append((key, line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> YList:
    result = YList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)
# Dates stay text: whoever reads one reports a wrong date (2026-02-30) at its line, instead of
# PyYAML raising ValueError for the whole file (calendar.yaml is full of dates).
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load_yaml(file: str, text: str, problems: Problems) -> Any:
    """The document, or None after recording a syntax error with its line."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.error(file, line, f"ошибка синтаксиса YAML: {exc.problem or exc}")
        return None
    except yaml.YAMLError as exc:
        problems.error(file, 1, f"ошибка YAML: {exc}")
        return None
    _report_duplicates(file, data, problems)
    return data


def _report_duplicates(file: str, data: Any, problems: Problems) -> None:
    if isinstance(data, YMap):
        for key, line in data.duplicates:
            problems.error(file, line, f"ключ «{key}» повторяется: действует только последний")
        for value in data.values():
            _report_duplicates(file, value, problems)
    elif isinstance(data, list):
        for value in data:
            _report_duplicates(file, value, problems)


@dataclass
class Row:
    line: int
    cells: dict[str, str] = field(default_factory=dict)

    def get(self, column: str) -> str:
        return self.cells.get(column, "").strip()


def load_csv(
    file: str, text: str, problems: Problems, *, required: tuple[str, ...]
) -> tuple[list[str], list[Row]]:
    """Header and rows of a spreadsheet export: comma or semicolon (Excel's Russian locale)."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines:
        problems.error(file, 1, "файл пуст: нужна строка заголовков")
        return [], []
    first = lines[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    for column in required:
        if column not in header:
            problems.error(file, 1, f"нет обязательной колонки «{column}»")
    rows: list[Row] = []
    previous_end = reader.line_num
    for record in reader:
        start = previous_end + 1
        previous_end = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            problems.error(file, start, f"ячеек {len(record)}, а колонок {len(header)}")
        rows.append(Row(start, dict(zip(header, record, strict=False))))
    return header, rows
