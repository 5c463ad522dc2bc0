"""The sandbox's telephony as a portal does it (docs: api-reference/telephony/*,
crm/timeline/activities/binding/*, tasks/tasks-task-{add,list}.md, voximplant-statistic-get.md).

Overrides the basic ``finish``/``attachRecord`` of other.py: ``finish`` creates the CRM call
activity bound to the call's CRM entity and enters the statistics (``voximplant.statistic.get``);
``attachRecord`` takes ``FILE_CONTENT`` (base64), a ``RECORD_URL`` the portal downloads itself —
refused for non-public addresses as the real portal does, unless a test allows them — or only a
``FILENAME``, answering an ``uploadUrl`` (``/rest/upload.json``) for a multipart upload.
Files are not kept, only their name, size and SHA-256, which tests compare.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import secrets
import socket
import time
from contextvars import ContextVar
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.bitrix24.sandbox.crm import Method, arg, now_iso
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.other import _call, _save_call
from hub.bitrix24.sandbox.query import as_int
from hub.bitrix24.sandbox.store import SandboxStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS tel_activities (
  id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tel_tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tel_files (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tel_uploads (
  token TEXT PRIMARY KEY, call_id TEXT NOT NULL, filename TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tel_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
TABLES = ("tel_activities", "tel_tasks", "tel_files", "tel_uploads", "tel_settings")
ENTITY_TYPES = {"LEAD": 1, "DEAL": 2, "CONTACT": 3, "COMPANY": 4}
_BASE: ContextVar[str] = ContextVar("sandbox_base_url", default="http://sandbox.invalid")


def ensure_schema(store: SandboxStore) -> None:
    with store.lock:
        store.conn.executescript(SCHEMA)


def reset(store: SandboxStore) -> None:
    with store.tx() as c:
        for table in TABLES:
            c.execute(f"DELETE FROM {table}")


def _setting(store: SandboxStore, key: str) -> bool:
    return store.scalar("SELECT value FROM tel_settings WHERE key = ?", (key,)) == "1"


# -- finish: the CRM activity and the statistics record ------------------------------------------
def call_finish(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    call_id = arg(p, "CALL_ID")
    if not isinstance(call_id, str):
        raise ApiError(400, "INVALID_ARGUMENT", "CALL_ID must be a string")
    call = _call(store, call_id)
    user = arg(p, "USER_ID")
    if not user and not arg(p, "USER_PHONE_INNER"):
        raise ApiError(400, "ERROR_CORE", "USER_ID or USER_PHONE_INNER should be set")
    if not call.get("finished"):
        duration = as_int(arg(p, "DURATION") or 0, "DURATION")
        status = str(arg(p, "STATUS_CODE") or ("200" if duration > 0 else "304"))
        owner_type = call.get("CRM_ENTITY_TYPE")
        bindings = []
        if owner_type in ENTITY_TYPES and call.get("CRM_ENTITY_ID"):
            bindings.append(
                {"entityTypeId": ENTITY_TYPES[owner_type], "entityId": call["CRM_ENTITY_ID"]}
            )
        activity = {"TYPE": "CALL", "RESPONSIBLE_ID": as_int(user, "USER_ID") if user else None,
                    "DIRECTION": call["TYPE"], "bindings": bindings}  # fmt: skip
        with store.tx() as c:
            cur = c.execute(
                "INSERT INTO tel_activities (call_id, data) VALUES (?, ?)",
                (call_id, json.dumps(activity)),
            )
            activity_id = int(cur.lastrowid or 0)
        call.update(
            finished=True, duration=duration, status=status, finished_at=now_iso(),
            failed_reason=str(arg(p, "FAILED_REASON") or ""), activity_id=activity_id,
        )  # fmt: skip
        _save_call(store, call)
    return Result(_stats(call))


def _stats(call: dict[str, Any]) -> dict[str, Any]:
    record = call.get("record") or {}
    return {
        "ID": call.get("activity_id"),
        "CALL_ID": call["CALL_ID"],
        "EXTERNAL_CALL_ID": call.get("EXTERNAL_CALL_ID") or None,
        "PORTAL_USER_ID": call.get("PORTAL_USER_ID"),
        "PORTAL_NUMBER": call.get("LINE_NUMBER") or "",
        "PHONE_NUMBER": call.get("PHONE_NUMBER"),
        "INCOMING": call.get("TYPE"),
        "CALL_TYPE": call.get("TYPE"),
        "CALL_DURATION": call.get("duration", 0),
        "CALL_STATUS": 1 if call.get("status") == "200" else 0,
        "CALL_FAILED_CODE": call.get("status"),
        "CALL_FAILED_REASON": call.get("failed_reason", ""),
        "CRM_ENTITY_TYPE": call.get("CRM_ENTITY_TYPE"),
        "CRM_ENTITY_ID": call.get("CRM_ENTITY_ID"),
        "CRM_ACTIVITY_ID": call.get("activity_id"),
        "RECORD_FILE_ID": record.get("file_id"),
    }


def statistic_get(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    """Finished calls only, filtered by equality on the given fields."""
    flt = arg(p, "FILTER", "filter") or {}
    rows = [_stats(c) for c in store.rows("SELECT data FROM tel_calls") if c.get("finished")]
    rows = [
        r for r in rows if all(str(r.get(k.lstrip("=")) or "") == str(v) for k, v in flt.items())
    ]
    return Result(rows, total=len(rows))


# -- attachRecord ------------------------------------------------------------------------------
def call_attach_record(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    call = _call(store, str(arg(p, "CALL_ID") or ""))
    if not call.get("finished"):
        raise ApiError(
            400,
            "",
            "Call is not found in the statistic table. It looks like it is not finished yet.",
        )
    url, filename = arg(p, "RECORD_URL"), str(arg(p, "FILENAME") or "")
    if not url and not filename:
        raise ApiError(
            400,
            "",
            "Required parameters are not set. "
            "Request should contain either URL or FILENAME parameter",
        )
    name = filename or str(url).split("?")[0].rsplit("/", 1)[-1]
    if not name.lower().endswith((".mp3", ".wav")):
        raise ApiError(400, "ERROR_CORE", "Wrong file extension. Only wav and mp3 are allowed")
    content = arg(p, "FILE_CONTENT")
    if url:
        sha, size = _download(store, str(url))
        return Result({"FILE_ID": _attach(store, call, name, sha, size, "url")})
    if content is not None:
        try:
            data = base64.b64decode(str(content), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400,
                "ERROR_CORE",
                "File content is not properly encoded. Base64 encoding is expected.",
            ) from None
        if not data:
            raise ApiError(400, "ERROR_CORE", "File content is empty.")
        sha = hashlib.sha256(data).hexdigest()
        return Result({"FILE_ID": _attach(store, call, name, sha, len(data), "content")})
    token = secrets.token_urlsafe(18)
    with store.tx() as c:
        c.execute("INSERT INTO tel_uploads VALUES (?, ?, ?)", (token, call["CALL_ID"], name))
    upload = f"{_BASE.get()}/rest/upload.json?auth={secrets.token_hex(16)}&token={token}"
    return Result({"uploadUrl": upload, "fieldName": "file"})


def _attach(
    store: SandboxStore, call: dict[str, Any], name: str, sha: str, size: int, via: str
) -> int:
    record = {"filename": name, "sha256": sha, "size": size, "via": via, "at": time.time()}
    with store.tx() as c:
        file_id = int(
            c.execute("INSERT INTO tel_files (data) VALUES (?)", (json.dumps(record),)).lastrowid
            or 0
        )
    call["record"] = {**record, "file_id": file_id}  # a new record replaces the old one
    call["records_attached"] = int(call.get("records_attached", 0)) + 1
    _save_call(store, call)
    return file_id


def _download(store: SandboxStore, url: str) -> tuple[str, int]:
    host = httpx.URL(url).host
    if not _setting(store, "allow_private_record_urls"):
        try:
            addrs = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError:
            raise ApiError(400, "ERROR_CORE", "Server returns HTTP error code 0") from None
        if any(not ipaddress.ip_address(a).is_global for a in addrs):
            raise ApiError(400, "", "Record URL resolves to a non-public address and was blocked.")
    digest, size = hashlib.sha256(), 0
    try:
        with httpx.stream("GET", url, timeout=60, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise ApiError(
                    400, "ERROR_CORE", f"Server returns HTTP error code {resp.status_code}"
                )
            for chunk in resp.iter_bytes(1 << 18):
                digest.update(chunk)
                size += len(chunk)
    except httpx.HTTPError:
        raise ApiError(400, "ERROR_CORE", "Server returns HTTP error code 0") from None
    return digest.hexdigest(), size


# -- activity bindings and tasks -----------------------------------------------------------------
def _activity(store: SandboxStore, activity_id: Any) -> tuple[int, dict[str, Any]]:
    aid = as_int(activity_id, "activityId")
    found = store.rows("SELECT data FROM tel_activities WHERE id = ?", (aid,))
    if not found:
        raise ApiError(400, "NOT_FOUND", "Entity not found")
    return aid, found[0]


def binding_add(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    aid, activity = _activity(store, arg(p, "activityId"))
    etid, eid = (
        as_int(arg(p, "entityTypeId"), "entityTypeId"),
        as_int(arg(p, "entityId"), "entityId"),
    )
    if store.get_item(etid, eid) is None:
        raise ApiError(400, "NOT_FOUND", "Entity not found")
    binding = {"entityTypeId": etid, "entityId": eid}
    if binding in activity["bindings"]:
        raise ApiError(
            400, "ACTIVITY_IS_ALREADY_BOUND", "The activity is already bound to this entity"
        )
    activity["bindings"].append(binding)
    with store.tx() as c:
        c.execute("UPDATE tel_activities SET data = ? WHERE id = ?", (json.dumps(activity), aid))
    return Result(True)


def binding_list(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    return Result(_activity(store, arg(p, "activityId"))[1]["bindings"])


def task_add(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    fields = arg(p, "fields") or {}
    if not isinstance(fields, dict) or not fields:
        raise ApiError(400, "100", "Could not find value for parameter {fields}")
    if not str(fields.get("TITLE") or "").strip():
        raise ApiError(400, "ERROR_CORE", "Task title not specified<br>")
    responsible = fields.get("RESPONSIBLE_ID")
    if not responsible:
        raise ApiError(400, "ERROR_CORE", "Assignee not specified<br>")
    if (
        store.scalar("SELECT 1 FROM users WHERE id = ?", (as_int(responsible, "RESPONSIBLE_ID"),))
        is None
    ):
        raise ApiError(400, "ERROR_CORE", 'User specified in the "Assignee" field not found<br>')
    crm = fields.get("UF_CRM_TASK") or []
    task = {
        "title": str(fields["TITLE"]),
        "description": str(fields.get("DESCRIPTION") or ""),
        "responsibleId": str(responsible),
        "createdBy": str(fields.get("CREATED_BY") or caller.user_id),
        "deadline": fields.get("DEADLINE"),
        "status": "2",
        "ufCrmTask": list(crm.values()) if isinstance(crm, dict) else list(crm),
    }
    with store.tx() as c:
        tid = int(c.execute("INSERT INTO tel_tasks (data) VALUES ('{}')").lastrowid or 0)
        task["id"] = str(tid)
        c.execute("UPDATE tel_tasks SET data = ? WHERE id = ?", (json.dumps(task), tid))
    return Result({"task": task})


def task_list(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    flt = arg(p, "filter") or {}
    tasks = store.rows("SELECT data FROM tel_tasks ORDER BY id DESC")
    title = str(flt.get("TITLE") or "")
    if title:
        needle = title.strip("%").lower()
        like = "%" in title
        tasks = [
            t for t in tasks if (needle in t["title"].lower() if like else t["title"] == title)
        ]
    if flt.get("RESPONSIBLE_ID"):
        tasks = [t for t in tasks if t["responsibleId"] == str(flt["RESPONSIBLE_ID"])]
    if flt.get("UF_CRM_TASK"):
        tasks = [t for t in tasks if str(flt["UF_CRM_TASK"]) in t["ufCrmTask"]]
    return Result({"tasks": tasks[:50]}, total=len(tasks))


METHODS: dict[str, Method] = {
    "telephony.externalcall.finish": call_finish,
    "telephony.externalcall.attachrecord": call_attach_record,
    "voximplant.statistic.get": statistic_get,
    "crm.activity.binding.add": binding_add,
    "crm.activity.binding.list": binding_list,
    "tasks.task.add": task_add,
    "tasks.task.list": task_list,
}


# -- HTTP: the upload URL, and what tests read ----------------------------------------------------
class _RememberBase:
    """Where this portal answers, for the ``uploadUrl`` it hands out (handlers see no request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode()
            _BASE.set(f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}")
        await self.app(scope, receive, send)


def add_routes(app: FastAPI, store: SandboxStore) -> None:
    app.add_middleware(_RememberBase)

    async def upload(request: Request) -> JSONResponse:
        """``/rest/upload.json?token=…``: the record file, streamed (spooled to disk)."""
        token = request.query_params.get("token", "")
        found = store.scalar(
            "SELECT call_id || '|' || filename FROM tel_uploads WHERE token = ?", (token,)
        )
        if not found:
            return JSONResponse(
                {"error": "INVALID_TOKEN", "error_description": "Upload token is invalid"}, 400
            )
        call_id, name = str(found).split("|", 1)
        form = await request.form()
        part = form.get("file")
        if part is None or isinstance(part, str):
            return JSONResponse(
                {"error": "ERROR_CORE", "error_description": "File content is empty."}, 400
            )
        digest, size = hashlib.sha256(), 0
        while chunk := await part.read(1 << 18):
            digest.update(chunk)
            size += len(chunk)
        with store.tx() as c:
            c.execute("DELETE FROM tel_uploads WHERE token = ?", (token,))
        file_id = _attach(store, _call(store, call_id), name, digest.hexdigest(), size, "upload")
        return JSONResponse({"result": {"FILE_ID": file_id}})

    app.add_api_route("/rest/upload.json", upload, methods=["POST"])
    # Before /rest/{method}, which would take "upload.json" for a method name.
    app.router.routes.insert(0, app.router.routes.pop())

    @app.get("/_sandbox/telephony")
    def state() -> dict[str, Any]:
        calls = store.rows("SELECT data FROM tel_calls ORDER BY rowid")
        activities = {r["id"]: r for r in _activities(store)}
        for call in calls:
            call["activity"] = activities.get(call.get("activity_id"))
        return {"calls": calls, "tasks": store.rows("SELECT data FROM tel_tasks ORDER BY id")}

    @app.post("/_sandbox/telephony")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        with store.tx() as c:
            for key in ("allow_private_record_urls",):
                if key in body:
                    c.execute(
                        "INSERT OR REPLACE INTO tel_settings VALUES (?, ?)",
                        (key, "1" if body[key] else "0"),
                    )
        return {"allow_private_record_urls": _setting(store, "allow_private_record_urls")}


def _activities(store: SandboxStore) -> list[dict[str, Any]]:
    with store.lock:
        rows = store.conn.execute("SELECT id, data FROM tel_activities").fetchall()
    return [{**json.loads(r["data"]), "id": int(r["id"])} for r in rows]
