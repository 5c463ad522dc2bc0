"""The sandbox's event and placement bindings (docs: api-reference/events/event-bind.md,
event-get.md, event-unbind.md, widgets/placement-bind.md): per application, as on a portal."""

from __future__ import annotations

import json
import re
from typing import Any

from hub.bitrix24.sandbox.crm import Method, arg
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.openlines import app_of, required
from hub.bitrix24.sandbox.store import SandboxStore

EVENTS_KNOWN = re.compile(r"^ON[A-Z0-9_]+$")
# Placements that ignore OPTIONS: not kept, placement.get answers [] (docs: widgets/left-menu.md).
NO_OPTIONS = {"LEFT_MENU"}
APP_ONLY = {
    "event.bind",
    "event.unbind",
    "event.get",
    "placement.bind",
    "placement.unbind",
    "placement.get",
}


def event_bind(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    client_id = app_of(caller)
    event = str(arg(p, "event") or "").upper()
    handler = str(arg(p, "handler") or "")
    if not EVENTS_KNOWN.match(event):
        raise ApiError(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
    if not handler.startswith("http"):
        raise ApiError(400, "ERROR_ARGUMENT", "Argument 'handler' is null or empty")
    if str(arg(p, "event_type") or "online") == "offline" and caller.user_id != 1:
        raise ApiError(403, "ACCESS_DENIED", "Offline events binding requires administrator")
    with store.tx() as c:
        exists = c.execute(
            "SELECT 1 FROM ol_bindings WHERE client_id = ? AND event = ? AND handler = ?",
            (client_id, event, handler),
        ).fetchone()
        if exists:
            raise ApiError(400, "ERROR_CORE", "Handler already binded")
        c.execute(
            "INSERT INTO ol_bindings (client_id, event, handler) VALUES (?, ?, ?)",
            (client_id, event, handler),
        )
    return Result(True)


def event_unbind(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    client_id = app_of(caller)
    sql, args = "DELETE FROM ol_bindings WHERE client_id = ?", [client_id]
    for name in ("event", "handler"):
        if arg(p, name):
            sql += f" AND {name} = ?"
            args.append(str(arg(p, name)).upper() if name == "event" else str(arg(p, name)))
    with store.tx() as c:
        return Result({"count": c.execute(sql, args).rowcount})


def event_get(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    rows = store.conn.execute(
        "SELECT event, handler FROM ol_bindings WHERE client_id = ? ORDER BY id", (app_of(caller),)
    ).fetchall()
    return Result(
        [
            {"event": r["event"], "handler": r["handler"], "auth_type": "0", "offline": 0}
            for r in rows
        ]
    )


def placement_bind(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    client_id = app_of(caller)
    placement, handler = required(p, "PLACEMENT", "HANDLER")
    placement = str(placement).upper()
    data = {k.upper(): v for k, v in p.items() if k != "auth"}
    if placement in NO_OPTIONS:
        data.pop("OPTIONS", None)
    with store.tx() as c:
        c.execute(
            "INSERT OR REPLACE INTO ol_placements (client_id, placement, handler, data) "
            "VALUES (?, ?, ?, ?)",
            (client_id, placement, str(handler), json.dumps(data, ensure_ascii=False)),
        )
    return Result(True)


def placement_unbind(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    (placement,) = required(p, "PLACEMENT")
    sql = "DELETE FROM ol_placements WHERE client_id = ? AND placement = ?"
    args = [app_of(caller), str(placement).upper()]
    if arg(p, "HANDLER"):
        sql += " AND handler = ?"
        args.append(str(arg(p, "HANDLER")))
    with store.tx() as c:
        return Result({"count": c.execute(sql, args).rowcount})


def placement_get(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    rows = store.conn.execute(
        "SELECT placement, handler, data FROM ol_placements WHERE client_id = ? ORDER BY id",
        (app_of(caller),),
    ).fetchall()
    out = []
    for r in rows:
        data = json.loads(r["data"])
        out.append(
            {
                "placement": r["placement"],
                "userId": 0,
                "handler": r["handler"],
                "options": data.get("OPTIONS") or [],
                "title": data.get("TITLE") or "",
                "description": data.get("DESCRIPTION") or "",
                "langAll": data.get("LANG_ALL") or {},
            }
        )
    return Result(out)


METHODS: dict[str, Method] = {
    "event.bind": event_bind,
    "event.unbind": event_unbind,
    "event.get": event_get,
    "placement.bind": placement_bind,
    "placement.unbind": placement_unbind,
    "placement.get": placement_get,
}
