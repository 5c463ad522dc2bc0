"""The sandbox's CRM methods: ``crm.item.*``, ``crm.duplicate.findbycomm``, timeline comments,
pipelines and stages. Shapes follow bitrix24/b24restdocs and the saved payloads."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.query import as_int, matches, page, select_fields, sort_key
from hub.bitrix24.sandbox.store import SandboxStore

ENTITY_NAMES = {1: "lead", 2: "deal", 3: "contact"}
TITLES = {1: "Лид", 2: "Сделка", 3: "Контакт"}
_INT_FIELDS = {"categoryId", "assignedById", "contactId", "companyId", "leadId", "createdBy"}


Method = Callable[[SandboxStore, Caller, dict[str, Any]], Result]


def arg(params: dict[str, Any], *names: str, default: Any = None) -> Any:
    """Bitrix accepts several spellings (``filter``/``FILTER``, ``id``/``ID``)."""
    for name in names:
        for variant in (name, name.lower(), name.upper()):
            if variant in params:
                return params[variant]
    return default


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def norm_comm(type_id: str, value: str) -> str:
    """Bitrix compares phones by digits; ClientHub sends E.164, staff type 8 (916) …."""
    if type_id == "PHONE":
        digits = re.sub(r"\D", "", value)
        if len(digits) == 11 and digits.startswith("8"):
            digits = "7" + digits[1:]
        return digits
    return value.strip().lower()


# -- crm.item.* --------------------------------------------------------------------------------
def _entity_type(params: dict[str, Any]) -> int:
    etid = as_int(arg(params, "entityTypeId"), "entityTypeId")
    if etid not in ENTITY_NAMES:
        raise ApiError(400, "NOT_FOUND", "Smart process not found")
    return etid


def _stage_ids(store: SandboxStore, entity: str) -> list[str]:
    with store.lock:
        return [
            r[0]
            for r in store.conn.execute(
                "SELECT status_id FROM statuses WHERE entity_id = ? ORDER BY id", (entity,)
            )
        ]


def _user_exists(store: SandboxStore, uid: int) -> bool:
    return store.scalar("SELECT 1 FROM users WHERE id = ?", (uid,)) is not None


def _validate(store: SandboxStore, etid: int, fields: dict[str, Any], caller: Caller) -> None:
    for key in _INT_FIELDS & fields.keys():
        if fields[key] in ("", None):
            fields.pop(key)
        else:
            fields[key] = as_int(fields[key], key)
    if "contactIds" in fields:
        ids = fields["contactIds"]
        fields["contactIds"] = [
            as_int(x, "contactIds") for x in (ids if isinstance(ids, list) else [ids])
        ]
    assigned = fields.setdefault("assignedById", caller.user_id)
    if not _user_exists(store, assigned):
        raise ApiError(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", f"User {assigned} is not found")
    for cid in [fields.get("contactId"), *(fields.get("contactIds") or [])]:
        if cid and store.get_item(3, cid) is None:
            raise ApiError(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", f"Contact {cid} is not found")
    if etid == 2:
        cat = fields.setdefault("categoryId", 0)
        if (
            store.scalar("SELECT 1 FROM categories WHERE entity_type_id = 2 AND id = ?", (cat,))
            is None
        ):
            raise ApiError(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", f"Category {cat} is not found")
        stages = _stage_ids(store, "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}")
        fields.setdefault("stageId", stages[0])
        if fields["stageId"] not in stages:
            raise ApiError(
                400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", f"Stage {fields['stageId']} is not in {cat}"
            )
    elif etid == 1:
        stages = _stage_ids(store, "STATUS")
        fields.setdefault("stageId", stages[0])
        if fields["stageId"] not in stages:
            raise ApiError(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", "Unknown lead status")
    if "contactId" in fields and "contactIds" not in fields:
        fields["contactIds"] = [fields["contactId"]]
    if "fm" not in fields:
        return
    fm = fields.get("fm") or []
    fm = fm if isinstance(fm, list) else list(fm.values())
    fields["fm"] = [
        {
            "typeId": str(f.get("typeId", "")).upper(),
            "valueType": f.get("valueType", "WORK"),
            "value": str(f.get("value", "")),
            "norm": norm_comm(str(f.get("typeId", "")).upper(), str(f.get("value", ""))),
        }
        for f in fm
        if f.get("value")
    ]


def item_add(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = _entity_type(params)
    fields = arg(params, "fields")
    if not isinstance(fields, dict):
        raise ApiError(400, "", "Parameter 'fields' must be array.")
    fields = dict(fields)
    _validate(store, etid, fields, caller)
    stamp = now_iso()
    item = store.insert_item(
        etid,
        {
            **fields,
            "createdTime": stamp,
            "updatedTime": stamp,
            "createdBy": caller.user_id,
            "updatedBy": caller.user_id,
            "opened": fields.get("opened", "Y"),
        },
    )
    if not item.get("title") and etid != 3:
        item["title"] = f"{TITLES[etid]} #{item['id']}"
        store.update_item(item)
    return Result({"item": select_fields(item, ["*"])})


def item_get(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = _entity_type(params)
    item = store.get_item(etid, as_int(arg(params, "id"), "id"))
    if item is None:
        raise ApiError(400, "NOT_FOUND", "Element not found")
    return Result({"item": select_fields(item, ["*"])})


def item_update(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = _entity_type(params)
    item = store.get_item(etid, as_int(arg(params, "id"), "id"))
    if item is None:
        raise ApiError(400, "NOT_FOUND", "Element not found")
    fields = arg(params, "fields")
    if not isinstance(fields, dict):
        raise ApiError(400, "", "Parameter 'fields' must be array.")
    merged = {**item, **fields}
    if "fm" not in fields:
        merged["fm"] = [{k: v for k, v in f.items()} for f in item.get("fm") or []]
    _validate(store, etid, merged, caller)
    merged["updatedTime"] = now_iso()
    store.update_item(merged)
    return Result({"item": select_fields(merged, ["*"])})


def item_delete(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = _entity_type(params)
    item_id = as_int(arg(params, "id"), "id")
    if store.get_item(etid, item_id) is None:
        raise ApiError(400, "NOT_FOUND", "Element not found")
    store.delete_item(item_id)
    return Result([])


def item_list(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = _entity_type(params)
    flt = arg(params, "filter") or {}
    if not isinstance(flt, dict):
        raise ApiError(400, "INVALID_ARG_VALUE", "Invalid filter")
    origin = flt.get("@originId", flt.get("=originId", flt.get("originId")))
    if origin is not None:
        ids = origin if isinstance(origin, list) else [origin]
        rows = store.items(etid, [str(x) for x in ids])
    else:
        rows = store.items(etid)
    rows = [r for r in rows if matches(r, flt)]
    order = arg(params, "order") or {}
    for field, direction in reversed(list(order.items()) if isinstance(order, dict) else []):
        rows.sort(
            key=lambda r, f=field: sort_key(r.get(f)), reverse=str(direction).upper() == "DESC"
        )
    res = page(rows, arg(params, "start"))
    select = arg(params, "select")
    res.result = {"items": [select_fields(r, select) for r in res.result]}
    return res


# -- duplicates, comments ----------------------------------------------------------------------
def findbycomm(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    ctype = str(arg(params, "type", default="") or "").upper()
    if not ctype:
        raise ApiError(400, "Communication type is not defined", "Parameter 'type' is required.")
    if ctype not in ("PHONE", "EMAIL"):
        raise ApiError(400, f"Communication type '{ctype}' is not supported in current context", "")
    values = arg(params, "values")
    if isinstance(values, dict):
        values = list(values.values())
    if not values or not isinstance(values, list):
        raise ApiError(400, "Communication values is not defined", "")
    if len(values) > 20:
        raise ApiError(400, "Too many communication values", "At most 20 values")
    wanted = arg(params, "entity_type")
    normed = [norm_comm(ctype, str(v)) for v in values]
    out: dict[str, list[int]] = {}
    for etid, name in ((1, "LEAD"), (3, "CONTACT")):
        if wanted and str(wanted).upper() != name:
            continue
        ids = store.find_by_comm(ctype, normed, etid)
        if ids:
            out[name] = ids
    return Result(out or [])  # nothing found: `[]`, not `{}` (saved payload)


def _owner_type(value: Any) -> int:
    name = str(value or "").lower()
    for etid, ename in ENTITY_NAMES.items():
        if name == ename:
            return etid
    raise ApiError(400, "INVALID_ARG_VALUE", "Unknown ENTITY_TYPE")


def comment_add(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    fields = params.get("fields")  # must be lower-case `fields` since crm 23.100.0
    if not isinstance(fields, dict):
        raise ApiError(400, "", "Parameter 'fields' must be array.")
    etype = str(fields.get("ENTITY_TYPE") or "").lower()
    entity_id = as_int(fields.get("ENTITY_ID"), "ENTITY_ID")
    if store.get_item(_owner_type(etype), entity_id) is None:
        raise ApiError(400, "OWNER_NOT_FOUND", "Owner not found")
    text = str(fields.get("COMMENT") or "")
    if not text.strip():
        raise ApiError(400, "INVALID_ARG_VALUE", "Empty comment")
    cid = store.insert_comment(
        etype,
        entity_id,
        {
            "ENTITY_ID": str(entity_id),
            "ENTITY_TYPE": etype,
            "CREATED": now_iso(),
            "COMMENT": text,
            "AUTHOR_ID": str(caller.user_id),
            "FILES": {},
        },
    )
    return Result(cid)


def comment_list(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    flt = arg(params, "filter") or {}
    if "ENTITY_ID" not in flt or "ENTITY_TYPE" not in flt:
        raise ApiError(400, "", "ENTITY_ID and ENTITY_TYPE are required in filter")
    rows = store.comments(str(flt["ENTITY_TYPE"]).lower(), as_int(flt["ENTITY_ID"], "ENTITY_ID"))
    rest = {k: v for k, v in flt.items() if k not in ("ENTITY_ID", "ENTITY_TYPE")}
    return page([r for r in rows if matches(r, rest)], arg(params, "start"))


def comment_get(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    found = store.comment(as_int(arg(params, "id"), "id"))
    if found is None:
        raise ApiError(400, "NOT_FOUND", "Comment not found")
    return Result(found)


# -- pipelines and stages ----------------------------------------------------------------------
def category_list(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = as_int(arg(params, "entityTypeId"), "entityTypeId")
    rows = store.rows("SELECT data FROM categories WHERE entity_type_id = ? ORDER BY id", (etid,))
    res = page(rows, arg(params, "start"))
    res.result = {"categories": res.result}
    return res


def category_get(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    etid = as_int(arg(params, "entityTypeId"), "entityTypeId")
    rows = store.rows(
        "SELECT data FROM categories WHERE entity_type_id = ? AND id = ?",
        (etid, as_int(arg(params, "id"), "id")),
    )
    if not rows:
        raise ApiError(400, "NOT_FOUND", "Category not found")
    return Result({"category": rows[0]})


def status_list(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    rows = store.rows("SELECT data FROM statuses ORDER BY id")
    flt = arg(params, "filter") or {}
    rows = [r for r in rows if matches(r, flt)]
    return Result(rows, total=len(rows))


METHODS: dict[str, Method] = {
    "crm.item.add": item_add,
    "crm.item.get": item_get,
    "crm.item.update": item_update,
    "crm.item.delete": item_delete,
    "crm.item.list": item_list,
    "crm.duplicate.findbycomm": findbycomm,
    "crm.timeline.comment.add": comment_add,
    "crm.timeline.comment.list": comment_list,
    "crm.timeline.comment.get": comment_get,
    "crm.category.list": category_list,
    "crm.category.get": category_get,
    "crm.status.list": status_list,
}
