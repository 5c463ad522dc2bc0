"""PHP ``http_build_query`` / ``parse_str`` bracket notation, as Bitrix24 speaks it.

Batch sub-commands are query strings (``crm.item.add?fields[title]=…``), and events and the
install callback arrive as ``application/x-www-form-urlencoded`` with ``auth[access_token]=…``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

# A batch reference (`$result[cmd][item][id]`) must reach the portal verbatim: it is substituted
# after the portal has split the query (docs: settings/how-to-call-rest-api/batch.md).
REFERENCE = re.compile(r"^\$result\[[^\]]+\](\[[^\]]*\])*$")


def _scalar(value: Any) -> str:
    # Python's None/True would become the strings "None"/"True" (fast_bitrix24 issue #156).
    if value is None:
        return ""
    if value is True:
        return "Y"
    if value is False:
        return "N"
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, ""))
        for k, v in value.items():
            _flatten(f"{prefix}[{k}]", v, out)
    elif isinstance(value, list | tuple):
        if not value:
            out.append((prefix, ""))
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out.append((prefix, _scalar(value)))


def encode(params: Mapping[str, Any]) -> str:
    """Encode nested params once, PHP style; ``$result[...]`` references stay readable."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(str(key), value, pairs)
    parts = []
    for key, value in pairs:
        k = quote(key, safe="[]")
        v = value if REFERENCE.match(value) else quote(value, safe="")
        parts.append(f"{k}={v}")
    return "&".join(parts)


_KEY = re.compile(r"^([^\[]+)((?:\[[^\]]*\])*)$")


def _listify(node: Any) -> Any:
    """PHP arrays with keys 0..n-1 become lists, as ``parse_str`` + ``json_encode`` would."""
    if isinstance(node, dict):
        fixed = {k: _listify(v) for k, v in node.items()}
        keys = list(fixed)
        if (
            keys
            and all(k.isdigit() for k in keys)
            and sorted(map(int, keys)) == list(range(len(keys)))
        ):
            return [fixed[str(i)] for i in range(len(keys))]
        return fixed
    return node


def parse(query: str) -> dict[str, Any]:
    """The inverse of :func:`encode` (``parse_str``): nested dicts, numeric keys as lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if not match:
            root[raw_key] = value
            continue
        path = [match.group(1)] + re.findall(r"\[([^\]]*)\]", match.group(2))
        node = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":  # `a[]=x` appends
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)
