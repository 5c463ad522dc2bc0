"""Editing one entity (a topic, region, department, pool, filter or rule) of a YAML file.

The file is read with ruamel.yaml's round-trip loader, the entity is changed in place (its inner
comments and flow style survive), dumped alone and spliced back over its own lines: everything
else in the file keeps its bytes, so the version diff shows only what the admin changed.
Scalars are written for YAML 1.1, the dialect the rule parser (PyYAML) reads: "yes", "1" and
"22:30" stay strings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString


@dataclass(frozen=True)
class Section:
    file: str
    key: str  # the top-level key holding the entities
    is_list: bool  # a list of maps with "id" (order matters) or a map keyed by code


SECTIONS = {
    "topics": Section("topics.yaml", "topics", False),
    "regions": Section("regions.yaml", "regions", False),
    "departments": Section("departments.yaml", "departments", False),
    "pools": Section("pools.yaml", "pools", False),
    "filters": Section("filters.yaml", "filters", True),
    "rules": Section("rules.yaml", "rules", True),
}


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.version = (1, 1)
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


class YamlDoc:
    def __init__(self, text: str, section: Section) -> None:
        self.text = text
        self.section = section
        self.lines = text.splitlines(keepends=True)
        self.doc = _yaml().load(text) if text.strip() else CommentedMap()
        if not isinstance(self.doc, CommentedMap):
            raise ValueError(f"{section.file}: ожидался словарь верхнего уровня")
        body = self.doc.get(section.key)
        self.body: Any = (
            body if body is not None else (CommentedSeq() if section.is_list else CommentedMap())
        )

    def ids(self) -> list[str]:
        if self.section.is_list:
            return [str(item.get("id", "")) for item in self.body if isinstance(item, dict)]
        return [str(k) for k in self.body]

    def _index(self, key: str) -> int:
        keys = self.ids()
        if key not in keys:
            raise KeyError(key)
        return keys.index(key)

    def get(self, key: str) -> CommentedMap:
        i = self._index(key)
        return self.body[i] if self.section.is_list else self.body[list(self.body)[i]]

    def start(self, key: str) -> tuple[int, int]:
        """(0-based line, column) where the entity's text begins."""
        i = self._index(key)
        return (
            self.body.lc.item(i) if self.section.is_list else self.body.lc.key(list(self.body)[i])
        )

    def span(self, key: str) -> tuple[int, int]:
        """Lines [first, end) of the entity, without the blank and comment lines after it."""
        i = self._index(key)
        first, _col = self.start(key)
        keys = self.ids()
        end = self.start(keys[i + 1])[0] if i + 1 < len(keys) else self._section_end()
        while end > first + 1 and _blank_or_comment(self.lines[end - 1]):
            end -= 1
        if self.section.is_list:  # the "- " of a list item may sit on its own line above
            while first > 0 and self.lines[first - 1].strip() == "-":
                first -= 1
        return first, end

    def _section_end(self) -> int:
        top = list(self.doc)
        at = top.index(self.section.key)
        return self.doc.lc.key(top[at + 1])[0] if at + 1 < len(top) else len(self.lines)

    def key_lines(self, key: str) -> dict[str, int]:
        """1-based line of each field of the entity (to put a checker message next to it)."""
        entity = self.get(key)
        return {str(k): entity.lc.key(k)[0] + 1 for k in entity}

    def _dump(self, key: str, entity: CommentedMap, column: int) -> str:
        """The entity's text at ``column``. Dumped under its section key, as in the file, so
        that end-of-line comments keep their place; the section key line is dropped."""
        wrapper = CommentedMap()
        if self.section.is_list:
            wrapper[self.section.key] = CommentedSeq([entity])
        else:
            wrapper[self.section.key] = CommentedMap({key: entity})
        out = io.StringIO()
        _yaml().dump(wrapper, out)
        lines = [ln for ln in out.getvalue().splitlines() if not ln.startswith(("%YAML", "---"))][
            1:
        ]
        while lines and _blank_or_comment(lines[-1]):
            lines.pop()
        first = lines[0]
        dumped = len(first) - len(first.lstrip(" -" if self.section.is_list else " "))
        shift = column - dumped
        # Comment lines keep the column they had in the file; only structure moves.
        if shift > 0:
            lines = [ln if _blank_or_comment(ln) else " " * shift + ln for ln in lines]
        elif shift < 0:
            lines = [
                ln if _blank_or_comment(ln) or ln[:-shift].strip() else ln[-shift:] for ln in lines
            ]
        newline = "\r\n" if "\r\n" in self.text else "\n"
        return newline.join(lines) + newline

    def replaced(self, key: str, entity: CommentedMap) -> str:
        first, end = self.span(key)
        column = self.start(key)[1]
        return "".join([*self.lines[:first], self._dump(key, entity, column), *self.lines[end:]])

    def appended(self, key: str, entity: CommentedMap) -> str:
        keys = self.ids()
        if not keys:  # an empty section: write the whole file (nothing to keep byte for byte)
            body = CommentedSeq([entity]) if self.section.is_list else CommentedMap({key: entity})
            self.doc[self.section.key] = body
            out = io.StringIO()
            _yaml().dump(self.doc, out)
            return (
                "\n".join(
                    ln for ln in out.getvalue().splitlines() if not ln.startswith(("%YAML", "---"))
                )
                + "\n"
            )
        _first, end = self.span(keys[-1])
        column = self.start(keys[-1])[1]
        head = "".join(self.lines[:end])
        if head and not head.endswith("\n"):
            head += "\n"
        return head + "\n" + self._dump(key, entity, column) + "".join(self.lines[end:])

    def removed(self, key: str) -> str:
        first, end = self.span(key)
        if end < len(self.lines) and not self.lines[end].strip():
            while end < len(self.lines) and not self.lines[end].strip():
                end += 1  # the blank lines that separated it from the next one
        else:
            while first > 0 and not self.lines[first - 1].strip():
                first -= 1  # the last one: the blank lines before it
        return "".join([*self.lines[:first], *self.lines[end:]])

    def moved(self, key: str, delta: int) -> str:
        """A list entity moved up (-1) or down (+1): rules run in file order."""
        keys = self.ids()
        i = self._index(key)
        j = i + delta
        if not self.section.is_list or not 0 <= j < len(keys):
            return self.text
        a, b = sorted((i, j))
        a_first, a_end = self.span(keys[a])
        b_first, b_end = self.span(keys[b])
        a_text = "".join(self.lines[a_first:a_end])
        between = "".join(self.lines[a_end:b_first])
        b_text = "".join(self.lines[b_first:b_end])
        return "".join([*self.lines[:a_first], b_text, between, a_text, *self.lines[b_end:]])


def to_yaml_text(value: Any) -> str:
    """A field's value as the admin sees it in a YAML box."""
    out = io.StringIO()
    y = _yaml()
    y.dump(value, out)
    lines = [
        ln.removeprefix("--- ")
        for ln in out.getvalue().splitlines()
        if not ln.startswith("%YAML") and ln not in ("---", "...")
    ]
    return "\n".join(lines).strip()


def parse_yaml_text(text: str) -> Any:
    """What the rule parser would read from the box (PyYAML, like hub.routing.parse)."""
    return pyyaml.safe_load(text) if text.strip() else None


def _quote_style(like: Any) -> Any:
    """New strings of a list quoted like the list's existing ones (phones in "…" stay so)."""
    items = [v for v in like if isinstance(v, str)] if isinstance(like, list) else []
    if items and all(isinstance(v, DoubleQuotedScalarString) for v in items):
        return DoubleQuotedScalarString
    if items and all(isinstance(v, SingleQuotedScalarString) for v in items):
        return SingleQuotedScalarString
    return lambda v: v


def styled(value: Any, like: Any = None) -> Any:
    """Plain data as ruamel nodes; collections take the flow style of ``like``, or flow style
    when short (``[a, b]``, ``{kind: call}``), as the sample files are written."""
    if isinstance(value, dict):
        node: Any = CommentedMap()
        for k, v in value.items():
            node[k] = styled(v, like.get(k) if isinstance(like, dict) else None)
    elif isinstance(value, list):
        quote = _quote_style(like)
        node = CommentedSeq(quote(v) if isinstance(v, str) else styled(v) for v in value)
    else:
        return value
    if isinstance(like, CommentedMap | CommentedSeq):
        flow = like.fa.flow_style()
    else:
        flow = len(repr(value)) <= 90 and not any(
            isinstance(v, dict | list) and len(v) > 3
            for v in (value.values() if isinstance(value, dict) else value)
        )
    if flow:
        node.fa.set_flow_style()
    else:
        node.fa.set_block_style()
    return node
