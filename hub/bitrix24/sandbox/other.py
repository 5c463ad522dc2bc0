"""The sandbox's user, department and telephony methods (docs: api-reference/telephony/*)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from hub.bitrix24.sandbox.crm import Method, arg, norm_comm, now_iso
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.query import as_int, matches, page
from hub.bitrix24.sandbox.store import SandboxStore

# Methods that answer `403 WRONG_AUTH_TYPE` to an inbound webhook (research notes §0).
APP_ONLY = {
    "telephony.externalcall.register",
    "telephony.externalcall.finish",
    "telephony.externalline.add",
    "telephony.externalline.update",
    "telephony.externalline.get",
    "telephony.externalline.delete",
    "event.bind",
    "event.unbind",
    "placement.bind",
    "imconnector.register",
    "imconnector.send.messages",
    "crm.activity.configurable.add",
}


def user_get(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    rows = store.rows("SELECT data FROM users ORDER BY id")
    flt = arg(params, "FILTER", "filter") or {}
    flt = {
        k: ("Y" if v in ("Y", True, "true") else v) if k == "ACTIVE" else v for k, v in flt.items()
    }
    for row in rows:
        row["ACTIVE"] = "Y" if row.get("ACTIVE") in (True, "Y") else "N"
    out = page([r for r in rows if matches(r, flt)], arg(params, "start"))
    for row in out.result:
        row["ACTIVE"] = row["ACTIVE"] == "Y"
    return out


def user_current(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    rows = store.rows("SELECT data FROM users WHERE id = ?", (caller.user_id,))
    if not rows:
        raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
    return Result(rows[0])


def department_get(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    rows = store.rows("SELECT data FROM departments ORDER BY id")
    flt = {k: v for k, v in params.items() if k.upper() in ("ID", "NAME", "PARENT", "UF_HEAD")}
    flt = {k.upper(): v for k, v in flt.items()}
    return page([r for r in rows if matches(r, flt)], arg(params, "START", "start"))


def _call(store: SandboxStore, call_id: str) -> dict[str, Any]:
    found = store.rows("SELECT data FROM tel_calls WHERE call_id = ?", (call_id,))
    if not found:
        raise ApiError(
            400, "ERROR_CORE", "Call is not found (call should be registered prior to finishing)"
        )
    return found[0]


def _save_call(store: SandboxStore, call: dict[str, Any]) -> None:
    with store.tx() as c:
        c.execute(
            "INSERT OR REPLACE INTO tel_calls VALUES (?, ?)",
            (call["CALL_ID"], json.dumps(call, ensure_ascii=False)),
        )


def call_register(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    user = arg(params, "USER_ID")
    if not user and not arg(params, "USER_PHONE_INNER"):
        raise ApiError(400, "ERROR_CORE", "USER_ID or USER_PHONE_INNER should be set")
    if (
        user
        and store.scalar("SELECT 1 FROM users WHERE id = ?", (as_int(user, "USER_ID"),)) is None
    ):
        raise ApiError(400, "ERROR_CORE", "User is not found or is not active")
    phone = str(arg(params, "PHONE_NUMBER") or "")
    if not norm_comm("PHONE", phone):
        raise ApiError(400, "ERROR_CORE", "Unsupported phone number format")
    call_type = str(arg(params, "TYPE") or "")
    if call_type not in {"1", "2", "3", "4", "5"}:
        raise ApiError(400, "ERROR_CORE", "Unknown TYPE")
    ext = str(arg(params, "EXTERNAL_CALL_ID") or "")
    line = str(arg(params, "LINE_NUMBER") or "")
    # A repeat within 30 min with the same phone, type, user, line and external id returns the
    # existing call (docs: telephony-external-call-register.md).
    fingerprint = "|".join([norm_comm("PHONE", phone), call_type, str(user), line, ext])
    for existing in store.rows("SELECT data FROM tel_calls"):
        if existing["_fingerprint"] == fingerprint and time.time() - existing["_at"] < 1800:
            return Result(_register_answer(existing))
    contacts = store.find_by_comm("PHONE", [norm_comm("PHONE", phone)], 3)
    entity_type = arg(params, "CRM_ENTITY_TYPE") or ("CONTACT" if contacts else None)
    entity_id = arg(params, "CRM_ENTITY_ID") or (contacts[0] if contacts else None)
    call = {
        "CALL_ID": f"externalCall.{uuid.uuid4().hex}.{int(time.time())}",
        "EXTERNAL_CALL_ID": ext,
        "PHONE_NUMBER": phone,
        "TYPE": call_type,
        "PORTAL_USER_ID": as_int(user, "USER_ID") if user else None,
        "LINE_NUMBER": line,
        "CRM_ENTITY_TYPE": entity_type,
        "CRM_ENTITY_ID": as_int(entity_id, "CRM_ENTITY_ID") if entity_id else None,
        "_fingerprint": fingerprint,
        "_at": time.time(),
        "finished": False,
        "record": None,
    }
    _save_call(store, call)
    return Result(_register_answer(call))


def _register_answer(call: dict[str, Any]) -> dict[str, Any]:
    return {
        "CALL_ID": call["CALL_ID"],
        "CRM_CREATED_LEAD": None,
        "CRM_CREATED_ENTITIES": [],
        "CRM_ENTITY_TYPE": call["CRM_ENTITY_TYPE"],
        "CRM_ENTITY_ID": call["CRM_ENTITY_ID"],
    }


def call_finish(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    call_id = arg(params, "CALL_ID")
    if not isinstance(call_id, str):
        raise ApiError(400, "INVALID_ARGUMENT", "CALL_ID must be a string")
    call = _call(store, call_id)
    if not arg(params, "USER_ID") and not arg(params, "USER_PHONE_INNER"):
        raise ApiError(400, "ERROR_CORE", "USER_ID or USER_PHONE_INNER should be set")
    duration = as_int(arg(params, "DURATION") or 0, "DURATION")
    status = str(arg(params, "STATUS_CODE") or ("200" if duration > 0 else "304"))
    call.update(finished=True, duration=duration, status=status, finished_at=now_iso())
    _save_call(store, call)
    return Result(
        {
            "CALL_ID": call["CALL_ID"],
            "EXTERNAL_CALL_ID": call["EXTERNAL_CALL_ID"],
            "PORTAL_USER_ID": call["PORTAL_USER_ID"],
            "PHONE_NUMBER": call["PHONE_NUMBER"],
            "INCOMING": call["TYPE"],
            "CALL_DURATION": duration,
            "CALL_STATUS": 1 if status == "200" else 0,
            "CALL_FAILED_CODE": status,
            "CRM_ENTITY_TYPE": call["CRM_ENTITY_TYPE"],
            "CRM_ENTITY_ID": call["CRM_ENTITY_ID"],
            "CRM_ACTIVITY_ID": None,
            "ID": call["CALL_ID"],
        }
    )


def call_attach_record(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    call = _call(store, str(arg(params, "CALL_ID") or ""))
    if not call["finished"]:
        raise ApiError(
            400,
            "ERROR_CORE",
            "Call is not found in the statistic table. It looks like it is not finished yet.",
        )
    filename = str(arg(params, "FILENAME") or "")
    url = arg(params, "RECORD_URL")
    if not url and not filename.lower().endswith((".mp3", ".wav")):
        raise ApiError(400, "ERROR_CORE", "Only .wav and .mp3 records are supported")
    call["record"] = {
        "url": url,
        "filename": filename,
        "has_content": bool(arg(params, "FILE_CONTENT")),
    }
    _save_call(store, call)
    if url or arg(params, "FILE_CONTENT"):
        return Result({"FILE_ID": abs(hash(call["CALL_ID"])) % 100000})
    return Result({"uploadUrl": "about:blank", "fieldName": "file"})


METHODS: dict[str, Method] = {
    "user.get": user_get,
    "user.current": user_current,
    "department.get": department_get,
    "telephony.externalcall.register": call_register,
    "telephony.externalcall.finish": call_finish,
    "telephony.externalcall.attachrecord": call_attach_record,
}
