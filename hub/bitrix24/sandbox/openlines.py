"""The sandbox's application-context methods: Open Lines connectors (``imconnector.*``), event
and placement bindings, chat messages. Shapes and errors follow bitrix24/b24restdocs
(api-reference/imopenlines/imconnector/*, events/event-bind.md, widgets/placement-bind.md).

The portal keeps chats (one per ``chat.id`` in group mode, else per ``user.id``), sessions,
messages both ways and the delivery statuses ClientHub reports; what fires events lives in
``openlines_http.py``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from hub.bitrix24.sandbox.crm import Method, arg
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.query import as_int
from hub.bitrix24.sandbox.store import SandboxStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS ol_apps (
  client_id TEXT PRIMARY KEY, application_token TEXT NOT NULL, base_url TEXT NOT NULL,
  install_url TEXT);
CREATE TABLE IF NOT EXISTS ol_bindings (
  id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, event TEXT NOT NULL,
  handler TEXT NOT NULL, UNIQUE (client_id, event, handler));
CREATE TABLE IF NOT EXISTS ol_placements (
  id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, placement TEXT NOT NULL,
  handler TEXT NOT NULL, data TEXT NOT NULL, UNIQUE (client_id, placement, handler));
CREATE TABLE IF NOT EXISTS ol_connectors (id TEXT PRIMARY KEY, client_id TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS ol_lines (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ol_line_connectors (
  connector TEXT NOT NULL, line INTEGER NOT NULL, active INTEGER NOT NULL, data TEXT,
  PRIMARY KEY (connector, line));
CREATE TABLE IF NOT EXISTS ol_chats (
  chat_id INTEGER PRIMARY KEY AUTOINCREMENT, connector TEXT NOT NULL, line INTEGER NOT NULL,
  group_key TEXT NOT NULL, ext_chat_id TEXT NOT NULL, ext_user_id TEXT NOT NULL,
  user_id INTEGER NOT NULL, session_id INTEGER NOT NULL, data TEXT NOT NULL,
  UNIQUE (connector, line, group_key));
CREATE TABLE IF NOT EXISTS ol_messages (
  message_id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL, direction TEXT NOT NULL,
  author_id INTEGER, ext_message_id TEXT, text TEXT NOT NULL, files TEXT NOT NULL,
  system INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, delivered TEXT, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_ol_messages_chat ON ol_messages (chat_id, message_id);
CREATE TABLE IF NOT EXISTS ol_files (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, sign TEXT NOT NULL, data BLOB);
CREATE TABLE IF NOT EXISTS ol_event_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, event TEXT NOT NULL,
  handler TEXT NOT NULL, body TEXT NOT NULL, status INTEGER, answer TEXT);
"""
TABLES = ("ol_chats", "ol_messages", "ol_files", "ol_event_log", "ol_line_connectors")
# Every method here needs the application context (docs: "works only in the context of an
# application"); im.message.add also accepts webhooks.
APP_ONLY = {
    "imconnector.register",
    "imconnector.unregister",
    "imconnector.list",
    "imconnector.activate",
    "imconnector.status",
    "imconnector.connector.data.set",
    "imconnector.send.messages",
    "imconnector.update.messages",
    "imconnector.delete.messages",
    "imconnector.send.status.delivery",
}
FIRST_IDS = (("ol_chats", 1700), ("ol_messages", 86400))  # look like a portal's, not like 1, 2


def ensure_schema(store: SandboxStore) -> None:
    with store.lock:
        store.conn.executescript(SCHEMA)
    seed(store)


def seed(store: SandboxStore) -> None:
    with store.tx() as c:
        if c.execute("SELECT count(*) FROM ol_lines").fetchone()[0] == 0:
            c.execute("INSERT INTO ol_lines VALUES (1, 'Обращения клиентов')")
        for table, first in FIRST_IDS:
            if c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0:
                c.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                c.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first))


def reset(store: SandboxStore) -> None:
    with store.tx() as c:
        for table in TABLES:
            c.execute(f"DELETE FROM {table}")
    seed(store)


def app_of(caller: Caller) -> str:
    if not caller.client_id:
        raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
    return caller.client_id


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    return str(value).lower() not in ("0", "n", "false", "no")


def required(params: dict[str, Any], *names: str) -> list[Any]:
    values = []
    for name in names:
        value = arg(params, name)
        if value in (None, "", [], {}):
            raise ApiError(400, "ERROR_ARGUMENT", f"Argument '{name}' is null or empty")
        values.append(value)
    return values


def _items(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value or [])


# -- imconnector: registration and lines -------------------------------------------------------
def connector_register(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    """Validation errors come as HTTP 200 with ``result: false`` (docs: imconnector-register)."""
    client_id = app_of(caller)
    cid = str(arg(p, "ID") or "").lower()
    icon = arg(p, "ICON") or {}
    checks = [
        (not cid, "CONNECTOR_ID_REQUIRED", "Connector ID is not specified"),
        ("." in cid, "APPLICATION_REGISTRATION_ERROR_POINT", "A dot is not allowed in the ID"),
        (not re.fullmatch(r"[a-z0-9_]*", cid), "GENERAL_CONNECTOR_REGISTRATION_ERROR", "Bad ID"),
        (not arg(p, "NAME"), "NAME_REQUIRED", "Connector name is not specified"),
        (not isinstance(icon, dict) or not icon.get("DATA_IMAGE"), "ICON_REQUIRED", "No icon"),
        (not arg(p, "PLACEMENT_HANDLER"), "NO_PLACEMENT_HANDLER", "No placement handler URL"),
    ]
    for failed, code, text in checks:
        if failed:
            return Result({"result": False, "error": code, "error_description": text})
    data = {k.upper(): v for k, v in p.items() if k != "auth"}
    data["CHAT_GROUP"] = _flag(data.get("CHAT_GROUP"), False)
    with store.tx() as c:
        c.execute(
            "INSERT OR REPLACE INTO ol_connectors VALUES (?, ?, ?)",
            (cid, client_id, json.dumps(data, ensure_ascii=False)),
        )
        # Bitrix24 binds SETTING_CONNECTOR itself (docs: widgets/setting-connector.md).
        c.execute(
            "DELETE FROM ol_placements WHERE client_id = ? AND placement = 'SETTING_CONNECTOR' "
            "AND json_extract(data, '$.CONNECTOR') = ?",
            (client_id, cid),
        )
        c.execute(
            "INSERT OR REPLACE INTO ol_placements (client_id, placement, handler, data) "
            "VALUES (?, 'SETTING_CONNECTOR', ?, ?)",
            (client_id, str(data["PLACEMENT_HANDLER"]), json.dumps({"CONNECTOR": cid})),
        )
    return Result({"result": True})


def connector(store: SandboxStore, cid: Any) -> dict[str, Any]:
    rows = store.rows("SELECT data FROM ol_connectors WHERE id = ?", (str(cid).lower(),))
    if not rows:
        raise ApiError(400, "IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a provider")
    return rows[0]


def connector_unregister(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    (cid,) = required(p, "ID")
    connector(store, cid)
    with store.tx() as c:
        c.execute("DELETE FROM ol_connectors WHERE id = ?", (str(cid).lower(),))
    return Result({"result": True})


def connector_list(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    return Result(
        {r["ID"].lower(): r["NAME"] for r in store.rows("SELECT data FROM ol_connectors")}
    )


def _line(store: SandboxStore, line: Any) -> int:
    line_id = as_int(line, "LINE")
    if store.scalar("SELECT 1 FROM ol_lines WHERE id = ?", (line_id,)) is None:
        raise ApiError(
            400, "NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist"
        )
    return line_id


def activate(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    cid, line, active = required(p, "CONNECTOR", "LINE", "ACTIVE")
    connector(store, cid)
    line_id = _line(store, line)
    with store.tx() as c:
        c.execute(
            "INSERT INTO ol_line_connectors VALUES (?, ?, ?, NULL) ON CONFLICT (connector, line) "
            "DO UPDATE SET active = excluded.active",
            (str(cid).lower(), line_id, 1 if _flag(active, False) else 0),
        )
    return Result(True)


def data_set(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    cid, line, data = required(p, "CONNECTOR", "LINE", "DATA")
    with store.tx() as c:
        c.execute(
            "UPDATE ol_line_connectors SET data = ? WHERE connector = ? AND line = ?",
            (json.dumps(data, ensure_ascii=False), str(cid).lower(), as_int(line, "LINE")),
        )
    return Result(True)


def line_active(store: SandboxStore, cid: Any, line: Any) -> bool:
    return bool(
        store.scalar(
            "SELECT active FROM ol_line_connectors WHERE connector = ? AND line = ?",
            (str(cid).lower(), as_int(line, "LINE")),
        )
    )


def status(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    (cid,) = required(p, "CONNECTOR")
    line = as_int(arg(p, "LINE") or 0, "LINE")
    on = line_active(store, cid, line)
    configured = store.scalar(
        "SELECT data IS NOT NULL FROM ol_line_connectors WHERE connector = ? AND line = ?",
        (str(cid).lower(), line),
    )
    return Result(
        {
            "LINE": line,
            "CONNECTOR": str(cid).lower(),
            "ERROR": False,
            "CONFIGURED": bool(configured),
            "STATUS": bool(on and configured),
        }
    )


# -- imconnector: messages ---------------------------------------------------------------------
def _chat_for(store: SandboxStore, cid: str, line: int, m: dict[str, Any]) -> dict[str, Any]:
    group = connector(store, cid).get("CHAT_GROUP")
    ext_chat, ext_user = str(m["chat"]["id"]), str(m["user"]["id"])
    key = ext_chat if group else ext_user
    with store.tx() as c:
        row = c.execute(
            "SELECT * FROM ol_chats WHERE connector = ? AND line = ? AND group_key = ?",
            (cid, line, key),
        ).fetchone()
        if row is None:
            user_id = 500 + int(c.execute("SELECT count(*) FROM ol_chats").fetchone()[0])
            session_id = 300 + int(c.execute("SELECT count(*) FROM ol_chats").fetchone()[0])
            c.execute(
                "INSERT INTO ol_chats (connector, line, group_key, ext_chat_id, ext_user_id, "
                "user_id, session_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, line, key, ext_chat, ext_user, user_id, session_id, "{}"),
            )
        c.execute(
            "UPDATE ol_chats SET data = ? WHERE connector = ? AND line = ? AND group_key = ?",
            (
                json.dumps({"chat": m["chat"], "user": m["user"]}, ensure_ascii=False),
                cid,
                line,
                key,
            ),
        )
        row = c.execute(
            "SELECT * FROM ol_chats WHERE connector = ? AND line = ? AND group_key = ?",
            (cid, line, key),
        ).fetchone()
    return dict(row)


def _checked_messages(p: dict[str, Any]) -> tuple[str, int, list[dict[str, Any]]]:
    cid, line, messages = required(p, "CONNECTOR", "LINE", "MESSAGES")
    if not isinstance(messages, list | dict):
        raise ApiError(400, "ERROR_ARGUMENT", "The value of an argument 'MESSAGES' must be array")
    items = _items(messages)
    for m in items:
        if not isinstance(m, dict) or not all(isinstance(m.get(k), dict) for k in ("user", "chat")):
            raise ApiError(
                400, "ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES"
            )
    return str(cid).lower(), as_int(line, "LINE"), items


def send_messages(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    cid, line, items = _checked_messages(p)
    connector(store, cid)
    if not line_active(store, cid, line):
        raise ApiError(
            400, "NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist"
        )
    results = []
    for m in items:
        message = m.get("message") if isinstance(m.get("message"), dict) else {}
        user_id, chat_id = m["user"].get("id"), m["chat"].get("id")
        text, files = message.get("text"), _items(message.get("files"))
        if not user_id or not chat_id or not (text or files):
            results.append({"SUCCESS": False, "ERRORS": ["user.id, chat.id and text or files"]})
            continue
        chat = _chat_for(store, cid, line, m)
        with store.tx() as c:
            c.execute(
                "INSERT INTO ol_messages (chat_id, direction, author_id, ext_message_id, text, "
                "files, status, at) VALUES (?, 'in', ?, ?, ?, ?, 'received', ?)",
                (
                    chat["chat_id"],
                    chat["user_id"],
                    str(message.get("id") or ""),
                    str(text or ""),
                    json.dumps(files, ensure_ascii=False),
                    time.time(),
                ),
            )
        extra = {"disable_tracker": "Y"} if message.get("disable_crm") == "Y" else {}
        results.append(
            {
                "user": str(chat["user_id"]),
                "message": {"id": message.get("id"), "date": {}, "text": text, "files": files},
                "chat": {k: v for k, v in m["chat"].items() if k in ("id", "name")},
                "extra": extra,
                "SUCCESS": True,
                "session": {"ID": str(chat["session_id"]), "CHAT_ID": str(chat["chat_id"])},
            }
        )
    return Result({"SUCCESS": all(r["SUCCESS"] for r in results), "DATA": {"RESULT": results}})


def change_messages(store: SandboxStore, caller: Caller, p: dict[str, Any], delete: bool) -> Result:
    cid, line, items = _checked_messages(p)
    results = []
    for m in items:
        ext = str((m.get("message") or {}).get("id") or "")
        text = str((m.get("message") or {}).get("text") or "")
        with store.tx() as c:
            where = "WHERE direction = 'in' AND ext_message_id = ?"
            if delete:
                n = c.execute(f"UPDATE ol_messages SET status = 'deleted' {where}", (ext,)).rowcount
            else:
                n = c.execute(f"UPDATE ol_messages SET text = ? {where}", (text, ext)).rowcount
        results.append({"SUCCESS": bool(n)} if n else {"SUCCESS": False, "ERRORS": ["not found"]})
    return Result({"SUCCESS": all(r["SUCCESS"] for r in results), "DATA": {"RESULT": results}})


def status_delivery(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    """Records the status on the operator's message; it also marks it read (docs)."""
    cid, _line_id, messages = required(p, "CONNECTOR", "LINE", "MESSAGES")
    connector(store, cid)
    for m in _items(messages):
        if not isinstance(m, dict):
            continue
        im = m.get("im") or {}
        ids = _items((m.get("message") or {}).get("id"))
        with store.tx() as c:
            c.execute(
                "UPDATE ol_messages SET status = 'delivered', delivered = ? "
                "WHERE message_id = ? AND chat_id = ? AND direction = 'out'",
                (
                    json.dumps([str(i) for i in ids]),
                    as_int(im.get("message_id"), "im.message_id"),
                    as_int(im.get("chat_id"), "im.chat_id"),
                ),
            )
    return Result({"SUCCESS": True, "DATA": []})


# -- im ----------------------------------------------------------------------------------------
def im_message_add(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    dialog = str(arg(p, "DIALOG_ID") or "")
    text = str(arg(p, "MESSAGE") or "")
    if not dialog.startswith("chat") or not dialog[4:].isdigit():
        raise ApiError(400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    if not text.strip():
        raise ApiError(400, "MESSAGE_EMPTY", "Message can't be empty")
    chat_id = int(dialog[4:])
    if store.scalar("SELECT 1 FROM ol_chats WHERE chat_id = ?", (chat_id,)) is None:
        raise ApiError(400, "ACCESS_ERROR", "You do not have access to the specified dialog")
    system = 1 if str(arg(p, "SYSTEM") or "N").upper() == "Y" else 0
    with store.tx() as c:
        cur = c.execute(
            "INSERT INTO ol_messages (chat_id, direction, author_id, text, files, system, status, "
            "at) VALUES (?, 'internal', ?, ?, '[]', ?, 'posted', ?)",
            (chat_id, caller.user_id, text, system, time.time()),
        )
        return Result(int(cur.lastrowid or 0))


def lines_list(store: SandboxStore, caller: Caller, p: dict[str, Any]) -> Result:
    rows = store.conn.execute("SELECT id, name FROM ol_lines ORDER BY id").fetchall()
    return Result([{"ID": str(r["id"]), "LINE_NAME": r["name"], "ACTIVE": "Y"} for r in rows])


METHODS: dict[str, Method] = {
    "imconnector.register": connector_register,
    "imconnector.unregister": connector_unregister,
    "imconnector.list": connector_list,
    "imconnector.activate": activate,
    "imconnector.status": status,
    "imconnector.connector.data.set": data_set,
    "imconnector.send.messages": send_messages,
    "imconnector.update.messages": lambda s, c, p: change_messages(s, c, p, delete=False),
    "imconnector.delete.messages": lambda s, c, p: change_messages(s, c, p, delete=True),
    "imconnector.send.status.delivery": status_delivery,
    "im.message.add": im_message_add,
    "imopenlines.config.list.get": lines_list,
}
