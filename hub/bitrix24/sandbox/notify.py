"""The sandbox's notifications: ``im.notify.system.add`` (docs:
api-reference/chats/notifications/im-notify-system-add.md).

What the portal does and the sandbox copies: ``USER_ID`` and ``MESSAGE`` are required
(``USER_ID_EMPTY``, ``MESSAGE_EMPTY``), the message is trimmed, the answer is the new
notification's id, or ``false`` when nothing was created (an unknown user). A ``TAG`` is unique
per application: adding a notification with a tag already used removes the older ones, which is
what makes a repeated escalation step leave one notification, not two. Through an inbound
webhook ``TAG`` and ``SUB_TAG`` count only together with ``CLIENT_ID`` (docs: im index,
"Authorization and Limits"); without it they are ignored.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hub.bitrix24.sandbox.crm import Method, arg
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.query import as_int
from hub.bitrix24.sandbox.store import SandboxStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL, client_id TEXT,
  tag TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_notifications_tag ON notifications (client_id, tag);
"""
ATTACH_LIMIT = 30_000  # bytes of the serialized ATTACH (ATTACH_OVERSIZE)


def ensure_schema(store: SandboxStore) -> None:
    with store.lock:
        store.conn.executescript(SCHEMA)


def reset(store: SandboxStore) -> None:
    ensure_schema(store)
    with store.tx() as c:
        c.execute("DELETE FROM notifications")


def notifications(store: SandboxStore, user_id: int | None = None) -> list[dict[str, Any]]:
    """What users see now, oldest first (tests and the demo read it)."""
    ensure_schema(store)
    if user_id is None:
        return store.rows("SELECT data FROM notifications ORDER BY id")
    return store.rows("SELECT data FROM notifications WHERE user_id = ? ORDER BY id", (user_id,))


def system_add(store: SandboxStore, caller: Caller, params: dict[str, Any]) -> Result:
    user = arg(params, "USER_ID")
    user_id = as_int(user, "USER_ID") if user not in (None, "") else 0
    if user_id <= 0:
        raise ApiError(400, "USER_ID_EMPTY", "User ID can't be empty")
    message = str(arg(params, "MESSAGE") or "").strip()
    if not message:
        raise ApiError(400, "MESSAGE_EMPTY", "Message can't be empty")
    attach = arg(params, "ATTACH")
    if attach is not None:
        if not isinstance(attach, dict | list | str):
            raise ApiError(400, "ATTACH_ERROR", "Incorrect attach params")
        size = len(attach if isinstance(attach, str) else json.dumps(attach, ensure_ascii=False))
        if size > ATTACH_LIMIT:
            raise ApiError(400, "ATTACH_OVERSIZE", "You have exceeded the maximum allowable size")
    if store.scalar("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
        return Result(False)
    client = caller.client_id if caller.is_app else str(arg(params, "CLIENT_ID") or "")
    tag = str(arg(params, "TAG") or "") if client else ""
    sub_tag = str(arg(params, "SUB_TAG") or "") if client else ""
    data = {
        "USER_ID": user_id,
        "MESSAGE": message,
        "MESSAGE_OUT": str(arg(params, "MESSAGE_OUT") or ""),
        "TAG": tag or None,
        "SUB_TAG": sub_tag or None,
        "ATTACH": attach,
        "FROM_USER_ID": caller.user_id,
        "DATE": time.time(),
    }
    ensure_schema(store)
    with store.tx() as c:
        if tag:
            c.execute("DELETE FROM notifications WHERE client_id = ? AND tag = ?", (client, tag))
        cur = c.execute(
            "INSERT INTO notifications (user_id, client_id, tag, data) VALUES (?, ?, ?, '{}')",
            (user_id, client or None, tag or None),
        )
        notify_id = int(cur.lastrowid or 0)
        data["ID"] = notify_id
        c.execute(
            "UPDATE notifications SET data = ? WHERE id = ?",
            (json.dumps(data, ensure_ascii=False), notify_id),
        )
    return Result(notify_id)


METHODS: dict[str, Method] = {"im.notify.system.add": system_add}
