"""List semantics shared by the sandbox's methods: pages of 50, filters with prefixes, select."""

from __future__ import annotations

from typing import Any

from hub.bitrix24.sandbox.errors import ApiError, Result

PAGE = 50


def as_int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "INVALID_ARG_VALUE", f"Parameter '{what}' must be integer") from None


def page(rows: list[Any], start: Any) -> Result:
    start = as_int(start or 0, "start")
    if start == -1:  # the fast path: no COUNT, no next (docs: settings/performance/huge-data.md)
        return Result(rows[:PAGE])
    chunk = rows[start : start + PAGE]
    nxt = start + PAGE if start + PAGE < len(rows) else None
    return Result(chunk, total=len(rows), next=nxt)


# -- filters -----------------------------------------------------------------------------------
_OPS = ("!=%", "!%=", "!@", "!=", ">=", "<=", "=%", "%=", "!%", "@", ">", "<", "=", "%", "!")


def sort_key(value: Any) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _eq(have: Any, want: Any) -> bool:
    if isinstance(have, list):
        return any(_eq(h, want) for h in have)
    if have is None:
        return want in (None, "", "0") if want != 0 else False
    return str(have) == str(want)


def matches(item: dict[str, Any], flt: dict[str, Any]) -> bool:
    logic = str(flt.get("logic", "AND")).upper()
    results = []
    for raw_key, want in flt.items():
        if raw_key == "logic":
            continue
        if isinstance(want, dict) and (raw_key.isdigit() or "logic" in want):
            results.append(matches(item, want))
            continue
        op = next((o for o in _OPS if raw_key.startswith(o)), "=")
        field = raw_key[len(op) :] if raw_key.startswith(op) else raw_key
        results.append(_match_one(item.get(field), op, want))
    if not results:
        return True
    return any(results) if logic == "OR" else all(results)


def _match_one(have: Any, op: str, want: Any) -> bool:
    if op in ("@", "!@"):
        values = want if isinstance(want, list) else list(want.values())
        hit = any(_eq(have, w) for w in values)
        return hit if op == "@" else not hit
    if op in ("!=", "!"):
        return not _eq(have, want)
    if op in (">", ">=", "<", "<="):
        if have is None:
            return False
        a, b = sort_key(have), sort_key(want)
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
    if op in ("%", "=%", "%="):
        needle = str(want).strip("%").lower()
        return needle in str(have or "").lower()
    if op in ("!%", "!=%", "!%="):
        return str(want).strip("%").lower() not in str(have or "").lower()
    return _eq(have, want)


def select_fields(item: dict[str, Any], select: Any) -> dict[str, Any]:
    """``fm`` (multifields) only comes back with ``select: ["*"]`` (docs: crm-item-list.md)."""
    fields = select if isinstance(select, list) else list((select or {}).values())
    if not fields or "*" in fields:
        out = dict(item)
        if "fm" in out:
            out["fm"] = [{k: v for k, v in f.items() if k != "norm"} for f in out["fm"]]
        return out
    wanted = {"id", *fields}
    return {k: v for k, v in item.items() if k in wanted and k != "fm"}
