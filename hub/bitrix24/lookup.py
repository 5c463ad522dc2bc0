"""Lookups before creating: is the person already a contact, did an interrupted attempt already
create this deal or comment? All lookups of one delivery round share one ``batch`` request.

``crm.duplicate.findbycomm`` takes up to 20 values and answers with the union of matching ids,
so it is asked once per 20 phones; only when that union is not empty is each value asked again
to learn which contact is whose (a second round, rare once the outbox knows the regulars).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.bitrix24.batch import MAX_COMMANDS, Batch, BatchResult
from hub.bitrix24.plan import ENTITY_TYPE_IDS, ORIGINATOR, Identity, has_marker

Key = tuple[str, str]  # (kind, key) as in crm_links
FINDBYCOMM_MAX = 20
LIST_MAX = 50


@dataclass
class LookupRequest:
    contacts: dict[str, Identity] = field(default_factory=dict)  # contact key -> identity
    items: dict[Key, str] = field(default_factory=dict)  # (deal|lead, key) -> origin id
    comments: dict[Key, tuple[str, int, int]] = field(
        default_factory=dict
    )  # -> (entity, id, appeal)


@dataclass
class LookupResult:
    found: dict[Key, int] = field(default_factory=dict)
    failed: dict[Key, str] = field(default_factory=dict)
    ambiguous_values: dict[str, Identity] = field(default_factory=dict)  # need a per-value ask


def _chunks(values: list[Any], size: int) -> list[list[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def plan_lookups(req: LookupRequest, *, per_value: bool = False) -> tuple[list[Batch], dict]:
    """Commands for ``req``; returns the batches and, per command key, what it answers."""
    commands: list[tuple[str, str, dict[str, Any], tuple[str, Any]]] = []
    by_type: dict[str, list[Identity]] = {"PHONE": [], "EMAIL": []}
    im: list[str] = []
    for key, who in req.contacts.items():
        if who.comm_type:
            by_type[who.comm_type].append(who)
        else:
            im.append(key)
    n = 0
    for comm_type, people in by_type.items():
        size = 1 if per_value else FINDBYCOMM_MAX
        for chunk in _chunks(people, size):
            n += 1
            params = {
                "type": comm_type,
                "values": [p.value for p in chunk],
                "entity_type": "CONTACT",
            }
            commands.append((f"f{n}", "crm.duplicate.findbycomm", params, ("comm", chunk)))
    for chunk in _chunks(im, LIST_MAX):
        n += 1
        params = _origin_list(3, chunk)
        commands.append((f"f{n}", "crm.item.list", params, ("origin", ("contact", chunk))))
    by_entity: dict[str, list[tuple[Key, str]]] = {}
    for pair, origin in req.items.items():
        by_entity.setdefault(pair[0], []).append((pair, origin))
    for entity, rows in by_entity.items():
        for chunk in _chunks(rows, LIST_MAX):
            n += 1
            params = _origin_list(ENTITY_TYPE_IDS[entity], [o for _, o in chunk])
            commands.append((f"f{n}", "crm.item.list", params, ("items", chunk)))
    for pair, (entity, entity_id, appeal_id) in req.comments.items():
        n += 1
        params = {
            "filter": {"ENTITY_ID": entity_id, "ENTITY_TYPE": entity},
            "select": ["ID", "COMMENT"],
            "order": {"ID": "DESC"},  # a lost comment is among the newest
        }
        commands.append(
            (f"f{n}", "crm.timeline.comment.list", params, ("comment", (pair, appeal_id)))
        )
    batches: list[Batch] = []
    meaning: dict[str, tuple[str, Any]] = {}
    for chunk in _chunks(commands, MAX_COMMANDS):
        batch = Batch()
        for key, method, params, what in chunk:
            batch.add(key, method, params)
            meaning[key] = what
        batches.append(batch)
    return batches, meaning


def _origin_list(entity_type_id: int, origins: list[str]) -> dict[str, Any]:
    return {
        "entityTypeId": entity_type_id,
        "filter": {"=originatorId": ORIGINATOR, "@originId": origins},
        "select": ["id", "originId"],
        "order": {"id": "ASC"},
    }


def read_lookups(
    result: BatchResult, meaning: dict[str, tuple[str, Any]], out: LookupResult
) -> None:
    """Fold one lookup batch's answers into ``out``."""
    for cmd, (what, arg) in meaning.items():
        if cmd not in result.results and cmd not in result.errors:
            continue
        error = result.errors.get(cmd)
        if what == "comm":
            people: list[Identity] = arg
            if error:
                for p in people:
                    out.failed[("contact", p.key)] = str(error)
                continue
            ids = (
                (result.results.get(cmd) or {}) if isinstance(result.results.get(cmd), dict) else {}
            )
            contacts = [int(x) for x in ids.get("CONTACT", [])]
            if not contacts:
                continue
            if len(people) == 1:
                out.found[("contact", people[0].key)] = min(contacts)
            else:
                for p in people:
                    out.ambiguous_values[p.key] = p
        elif what in ("origin", "items"):
            pairs: list[tuple[Key, str]] = (
                [(("contact", k), k) for k in arg[1]] if what == "origin" else arg
            )
            if error:
                for pair, _ in pairs:
                    out.failed[pair] = str(error)
                continue
            items = (result.results.get(cmd) or {}).get("items", [])
            first: dict[str, int] = {}
            for item in items:
                first.setdefault(str(item.get("originId")), int(item["id"]))
            for pair, origin in pairs:
                if origin in first:
                    out.found[pair] = first[origin]
        elif what == "comment":
            pair, appeal_id = arg
            if error:
                out.failed[pair] = str(error)
                continue
            for row in result.results.get(cmd) or []:
                if has_marker(str(row.get("COMMENT", "")), appeal_id):
                    out.found[pair] = int(row["ID"])
                    break


def run_lookups(req: LookupRequest, send: Callable[[Batch], BatchResult | str]) -> LookupResult:
    """One round, plus a per-value round for findbycomm unions that matched something.
    ``send`` returns the batch result or, when the whole request failed, the error text."""
    out = LookupResult()
    for per_value, request in ((False, req), (True, None)):
        if per_value:
            if not out.ambiguous_values:
                break
            request = LookupRequest(contacts=dict(out.ambiguous_values))
            out.ambiguous_values.clear()
        assert request is not None
        batches, meaning = plan_lookups(request, per_value=per_value)
        for batch in batches:
            answer = send(batch)
            if isinstance(answer, str):
                for cmd in batch.commands:
                    _fail_all(meaning[cmd], answer, out)
                continue
            read_lookups(answer, {k: meaning[k] for k in batch.commands}, out)
    return out


def _fail_all(what: tuple[str, Any], error: str, out: LookupResult) -> None:
    kind, arg = what
    if kind == "comm":
        for p in arg:
            out.failed[("contact", p.key)] = error
    elif kind == "origin":
        for k in arg[1]:
            out.failed[("contact", k)] = error
    elif kind == "items":
        for pair, _ in arg:
            out.failed[pair] = error
    else:
        out.failed[arg[0]] = error
