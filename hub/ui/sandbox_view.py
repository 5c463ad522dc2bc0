"""What the sandbox portal holds, read the way a portal user sees it: deals with their pipeline,
stage, responsible and contact, the timeline ClientHub wrote, contacts, Open Lines chats and
telephony calls. Read straight from the sandbox's own SQLite store (hub/bitrix24/sandbox), not
through its REST API: a page view must not spend the rate limit ClientHub's deliveries share,
nor show up in the portal's call log that tests and benchmarks read.

Lists are newest first in keyset pages (``before`` = the last id shown), so a sandbox with a
million deals answers as fast as an empty one. Links back to ClientHub come from what ClientHub
writes: the ``ClientHub #id`` marker in every timeline comment, a deal's ``originId`` (its
thread's first appeal, with ``originatorId=clienthub``), the chat's deal link and
``EXTERNAL_CALL_ID`` ``clienthub-<appeal id>-…``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.bitrix24.plan import ORIGINATOR
from hub.bitrix24.sandbox.store import SandboxStore
from hub.files import file_url
from hub.reply_content import bbcode_to_text

PAGE_SIZE = 50
DETAIL_LIMIT = 200  # the newest messages of a chat, comments of a deal; older ones are counted
MARKER = re.compile(r"ClientHub #(\d+)(?!\d)")
_DEAL_URL = re.compile(r"/crm/(deal|lead)/details/(\d+)")
_CHAT_IN_SOURCE = re.compile(r"IM_DIALOG=chat(\d+)")
_CALL_APPEAL = re.compile(r"^clienthub-(\d+)-")
ENTITY_KINDS = {1: "lead", 2: "deal"}


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_before: int | None  # pass as ``before`` for the next page; None: this is the last one


def _page(rows: list[dict[str, Any]], key: str) -> Page:
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(rows, int(rows[-1][key]) if more and rows else None)


def _query(store: SandboxStore, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
    with store.lock:
        return [dict(r) for r in store.conn.execute(sql, tuple(args))]


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values)) or "NULL"


def _when(value: Any) -> datetime | None:
    """Store times are unix seconds or ISO strings; the templates format aware datetimes."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def counts(store: SandboxStore) -> dict[str, int]:
    by_type = store.count_items()
    return {
        "deals": by_type.get(1, 0) + by_type.get(2, 0),
        "contacts": by_type.get(3, 0),
        "chats": int(store.scalar("SELECT count(*) FROM ol_chats") or 0),
        "calls": int(store.scalar("SELECT count(*) FROM tel_calls") or 0),
    }


def user_names(store: SandboxStore, ids: Iterable[Any]) -> dict[int, str]:
    wanted = sorted({int(i) for i in ids if str(i or "").isdigit()})
    names = {}
    for row in _query(store, f"SELECT id, data FROM users WHERE id IN ({_marks(wanted)})", wanted):
        data = json.loads(row["data"])
        full = " ".join(x for x in (data.get("NAME"), data.get("LAST_NAME")) if x)
        names[int(row["id"])] = full or f"#{row['id']}"
    return names


def portal_users(store: SandboxStore, limit: int = 500) -> list[tuple[int, str]]:
    """Who may write as an operator (the reply form's choice), in id order."""
    ids = [r["id"] for r in _query(store, "SELECT id FROM users ORDER BY id LIMIT ?", (limit,))]
    names = user_names(store, ids)
    return [(i, names[i]) for i in ids]


def _stages(store: SandboxStore) -> dict[tuple[str, str], str]:
    """(entity, status id) -> name: deal stages per pipeline and lead statuses share ids."""
    rows = _query(store, "SELECT entity_id, status_id, data FROM statuses")
    return {
        (r["entity_id"], r["status_id"]): json.loads(r["data"]).get("NAME", r["status_id"])
        for r in rows
    }


def _stage_entity(kind: str, category: int) -> str:
    if kind == "lead":
        return "STATUS"
    return f"DEAL_STAGE_{category}" if category else "DEAL_STAGE"


def _pipelines(store: SandboxStore) -> dict[int, str]:
    rows = _query(store, "SELECT id, data FROM categories WHERE entity_type_id = 2")
    return {int(r["id"]): json.loads(r["data"]).get("name", str(r["id"])) for r in rows}


def _contact_name(item: dict[str, Any] | None) -> str:
    if not item:
        return ""
    return " ".join(x for x in (item.get("name"), item.get("lastName")) if x) or f"#{item['id']}"


def _items(store: SandboxStore, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = _query(store, f"SELECT id, data FROM items WHERE id IN ({_marks(ids)})", ids)
    return {int(r["id"]): json.loads(r["data"]) for r in rows}


def _appeal_ids(store: SandboxStore, items: list[dict[str, Any]]) -> dict[int, list[int]]:
    """ClientHub appeals behind each deal: its ``originId`` and the markers in its comments."""
    found: dict[int, set[int]] = {int(i["id"]): set() for i in items}
    for item in items:  # a deal's originId is the id of the thread's first appeal
        origin = str(item.get("originId") or "")
        if item.get("originatorId") == ORIGINATOR and origin.isdigit():
            found[int(item["id"])].add(int(origin))
    ids = list(found)
    sql = f"SELECT entity_id, data FROM comments WHERE entity_id IN ({_marks(ids)})"
    for row in _query(store, sql + " AND entity_type IN ('deal', 'lead')", ids):
        text = json.loads(row["data"]).get("COMMENT", "")
        found[int(row["entity_id"])].update(int(x) for x in MARKER.findall(text))
    return {k: sorted(v) for k, v in found.items()}


def _deal_row(item: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    stage = str(item.get("stageId") or "")
    kind = ENTITY_KINDS.get(int(item.get("entityTypeId") or 2), "deal")
    category = int(item.get("categoryId") or 0)
    chat = _CHAT_IN_SOURCE.search(str(item.get("sourceDescription") or ""))
    contact_id = item.get("contactId")
    return {
        "id": int(item["id"]),
        "kind": kind,
        "title": item.get("title") or "",
        "pipeline": ctx["pipelines"].get(category, "") if kind == "deal" else "",
        "stage": ctx["stages"].get((_stage_entity(kind, category), stage), stage),
        "responsible": ctx["users"].get(int(item.get("assignedById") or 0), ""),
        "assigned_id": item.get("assignedById"),
        "contact_id": contact_id,
        "contact": _contact_name(ctx["contacts"].get(int(contact_id or 0))),
        "created": _when(item.get("createdTime")),
        "origin_id": item.get("originId") or "",
        "source": item.get("sourceDescription") or "",
        "chat_id": int(chat.group(1)) if chat else None,
        "appeals": ctx["appeals"].get(int(item["id"]), []),
    }


def _deal_rows(store: SandboxStore, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    contact_ids = [int(i["contactId"]) for i in items if str(i.get("contactId") or "").isdigit()]
    ctx = {
        "stages": _stages(store),
        "pipelines": _pipelines(store),
        "users": user_names(store, (i.get("assignedById") for i in items)),
        "contacts": _items(store, contact_ids),
        "appeals": _appeal_ids(store, items),
    }
    return [_deal_row(i, ctx) for i in items]


def deals(store: SandboxStore, before: int | None = None) -> Page:
    """Deals and leads, newest first (leads share the portal's item ids in the sandbox)."""
    rows = _query(
        store,
        "SELECT id, data FROM items WHERE entity_type_id IN (1, 2) AND id < ? "
        "ORDER BY id DESC LIMIT ?",
        (before or 2**63 - 1, PAGE_SIZE + 1),
    )
    page = _page(rows, "id")
    return Page(_deal_rows(store, [json.loads(r["data"]) for r in page.rows]), page.next_before)


def deal(store: SandboxStore, item_id: int) -> dict[str, Any] | None:
    """One deal with its contact and the timeline comments, oldest first (as the card shows)."""
    item = _items(store, [item_id]).get(item_id)
    if item is None or int(item.get("entityTypeId") or 0) not in ENTITY_KINDS:
        return None
    [row] = _deal_rows(store, [item])
    contact_id = int(row["contact_id"] or 0)
    contact = _items(store, [contact_id]).get(contact_id) if contact_id else None
    row["contact_item"] = contact_row(contact) if contact else None
    comments = store.comments(row["kind"], item_id)
    row["hidden"], comments = max(0, len(comments) - DETAIL_LIMIT), comments[-DETAIL_LIMIT:]
    authors = user_names(store, (c.get("AUTHOR_ID") for c in comments))
    row["comments"] = [
        {
            "id": c.get("ID"),
            "at": _when(c.get("CREATED")),
            "author": authors.get(int(c.get("AUTHOR_ID") or 0), ""),
            "text": bbcode_to_text(str(c.get("COMMENT") or "")),
            "appeals": sorted({int(x) for x in MARKER.findall(str(c.get("COMMENT") or ""))}),
        }
        for c in comments
    ]
    row["can_reply"] = bool(
        store.scalar("SELECT 1 FROM ol_placements WHERE placement = 'CRM_DEAL_DETAIL_ACTIVITY'")
    )
    return row


def contact_row(item: dict[str, Any]) -> dict[str, Any]:
    fm = item.get("fm") or []

    def values(kind: str) -> list[str]:
        return [str(f.get("value")) for f in fm if f.get("typeId") == kind and f.get("value")]

    return {
        "id": int(item["id"]),
        "name": _contact_name(item),
        "phones": values("PHONE"),
        "emails": values("EMAIL"),
        "ims": [f"{f.get('valueType')}: {f.get('value')}" for f in fm if f.get("typeId") == "IM"],
        "source": item.get("sourceDescription") or "",
        "created": _when(item.get("createdTime")),
        "origin_id": item.get("originId") or "",
    }


def contacts(store: SandboxStore, before: int | None = None) -> Page:
    rows = _query(
        store,
        "SELECT id, data FROM items WHERE entity_type_id = 3 AND id < ? ORDER BY id DESC LIMIT ?",
        (before or 2**63 - 1, PAGE_SIZE + 1),
    )
    page = _page(rows, "id")
    return Page([contact_row(json.loads(r["data"])) for r in page.rows], page.next_before)


def _chat_row(row: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(row.get("data") or "{}")
    user, chat = data.get("user") or {}, data.get("chat") or {}
    deal = _DEAL_URL.search(str(chat.get("url") or ""))
    name = " ".join(x for x in (user.get("name"), user.get("last_name")) if x)
    return {
        "id": int(row["chat_id"]),
        "connector": row["connector"],
        "line": row["line"],
        "session_id": row["session_id"],
        "ext_chat_id": row["ext_chat_id"],
        "customer": name or str(user.get("id") or row["ext_user_id"]),
        "title": chat.get("name") or "",
        "deal_id": int(deal.group(2)) if deal else None,
    }


def chats(store: SandboxStore, before: int | None = None) -> Page:
    rows = _query(
        store, "SELECT * FROM ol_chats WHERE chat_id < ? ORDER BY chat_id DESC LIMIT ?",
        (before or 2**63 - 1, PAGE_SIZE + 1),
    )  # fmt: skip
    page = _page(rows, "chat_id")
    out = [_chat_row(r) for r in page.rows]
    ids = [c["id"] for c in out]
    stats = {
        int(r["chat_id"]): r
        for r in _query(
            store,
            "SELECT chat_id, count(*) AS n, max(message_id) AS last FROM ol_messages "
            f"WHERE chat_id IN ({_marks(ids)}) GROUP BY chat_id",
            ids,
        )
    }
    lasts = [int(s["last"]) for s in stats.values()]
    texts = {
        int(r["message_id"]): r
        for r in _query(
            store, f"SELECT * FROM ol_messages WHERE message_id IN ({_marks(lasts)})", lasts
        )
    }
    for c in out:
        found = stats.get(c["id"])
        last = texts.get(int(found["last"])) if found else None
        c["messages"] = int(found["n"]) if found else 0
        c["last_text"] = bbcode_to_text(last["text"])[:160] if last else ""
        c["last_at"] = _when(last["at"]) if last else None
    return Page(out, page.next_before)


def chat(store: SandboxStore, chat_id: int) -> dict[str, Any] | None:
    """One chat with its newest messages, oldest first: customer, operator and system lines."""
    found = _query(store, "SELECT * FROM ol_chats WHERE chat_id = ?", (chat_id,))
    if not found:
        return None
    row = _chat_row(found[0])
    messages = _query(
        store,
        "SELECT * FROM ol_messages WHERE chat_id = ? ORDER BY message_id DESC LIMIT ?",
        (chat_id, DETAIL_LIMIT),
    )[::-1]
    row["hidden"] = int(store.scalar("SELECT count(*) FROM ol_messages WHERE chat_id = ?",
                                     (chat_id,)) or 0) - len(messages)  # fmt: skip
    names = user_names(store, (m["author_id"] for m in messages if m["direction"] != "in"))
    row["messages"] = [
        {
            "id": m["message_id"],
            "direction": m["direction"],
            "system": bool(m["system"]),
            "author": row["customer"] if m["direction"] == "in" else names.get(m["author_id"], ""),
            "text": bbcode_to_text(m["text"]),
            "files": json.loads(m["files"] or "[]"),
            "status": m["status"],
            "at": _when(m["at"]),
        }
        for m in messages
    ]
    if row["deal_id"]:
        item = _items(store, [row["deal_id"]]).get(row["deal_id"])
        row["appeals"] = _appeal_ids(store, [item]).get(row["deal_id"], []) if item else []
    else:
        row["appeals"] = []
    row["operator_id"] = next(
        (m["author_id"] for m in reversed(messages) if m["direction"] == "out"), 1
    )
    return row


def _call_row(call: dict[str, Any], users: dict[int, str]) -> dict[str, Any]:
    record = call.get("record") or {}
    appeal = _CALL_APPEAL.match(str(call.get("EXTERNAL_CALL_ID") or ""))
    link = None
    if record.get("sha256") and record.get("filename"):
        link = file_url(str(record["sha256"]), str(record["filename"]))
    return {
        "id": call["CALL_ID"],
        "phone": call.get("PHONE_NUMBER") or "",
        "type": str(call.get("TYPE") or ""),  # 1 outgoing, 2 incoming, 3 redirected, 4 callback
        "user": users.get(int(call.get("PORTAL_USER_ID") or 0), ""),
        "line": call.get("LINE_NUMBER") or "",
        "at": _when(call.get("_at")),
        "finished": bool(call.get("finished")),
        "duration": call.get("duration"),
        "missed": call.get("finished") and str(call.get("status")) != "200",
        "entity": str(call.get("CRM_ENTITY_TYPE") or "").lower(),
        "entity_id": call.get("CRM_ENTITY_ID"),
        "record": record.get("filename"),
        "record_size": record.get("size"),
        "record_url": link,
        "appeal": int(appeal.group(1)) if appeal else None,
    }


def calls(store: SandboxStore, before: int | None = None) -> Page:
    rows = _query(
        store, "SELECT rowid AS n, data FROM tel_calls WHERE rowid < ? ORDER BY rowid DESC LIMIT ?",
        (before or 2**63 - 1, PAGE_SIZE + 1),
    )  # fmt: skip
    page = _page(rows, "n")
    data = [json.loads(r["data"]) for r in page.rows]
    users = user_names(store, (c.get("PORTAL_USER_ID") for c in data))
    return Page([_call_row(c, users) for c in data], page.next_before)
