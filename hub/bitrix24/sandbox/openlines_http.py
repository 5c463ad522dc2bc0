"""The sandbox portal's side of the application flow: it installs an app (posting the install
callback as a portal does), fires bound events at their handlers (PHP bracket form, with the
app's ``application_token`` and fresh tokens in ``auth``), opens placements (the POST a browser
makes when Bitrix24 shows a widget), and lets tests and the demo act as an operator.

Events are sent once, like Bitrix24's queue does; ``/_sandbox/events/{id}/redeliver`` sends a
logged one again, as a duplicate delivery would.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import Response

from hub.bitrix24 import phpquery
from hub.bitrix24.sandbox.openlines import connector as connector_of
from hub.bitrix24.sandbox.store import SandboxStore

if TYPE_CHECKING:
    from hub.bitrix24.sandbox.app import Portal

EVENT_TIMEOUT = 30.0


def base_url(request: Request) -> str:
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")


def _app_row(store: SandboxStore, client_id: str | None) -> dict[str, Any]:
    sql, args = "SELECT * FROM ol_apps", ()
    if client_id:
        sql, args = sql + " WHERE client_id = ?", (client_id,)
    with store.lock:
        row = store.conn.execute(sql + " ORDER BY rowid LIMIT 1", args).fetchone()
    if row is None:
        raise HTTPException(404, "no application is installed on the sandbox portal")
    return dict(row)


def _auth(portal: Portal, app: dict[str, Any], user_id: int) -> dict[str, Any]:
    base = app["base_url"]
    auth = portal.issue_tokens(app["client_id"], user_id)
    auth.update(
        domain=httpx.URL(base).netloc.decode(),
        client_endpoint=f"{base}/rest/",
        server_endpoint=f"{base}/oauth/rest/",
        application_token=app["application_token"],
    )
    auth.pop("refresh_token", None)  # only ONAPPINSTALL and offline events carry it
    return auth


def _post(store: SandboxStore, event: str, handler: str, body: str) -> dict[str, Any]:
    try:
        r = httpx.post(
            handler,
            content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=EVENT_TIMEOUT,
        )
        status, answer = r.status_code, r.text[:2000]
    except httpx.HTTPError as exc:
        status, answer = 0, type(exc).__name__  # lost: Bitrix24 does not retry
    with store.tx() as c:
        cur = c.execute(
            "INSERT INTO ol_event_log (at, event, handler, body, status, answer) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), event, handler, body, status, answer),
        )
        log_id = int(cur.lastrowid or 0)
    return {"id": log_id, "event": event, "handler": handler, "status": status, "answer": answer}


def fire(
    portal: Portal, event: str, data: Any, *, client_id: str | None = None, user_id: int = 1
) -> list[dict[str, Any]]:
    """POST ``event`` to every handler the app bound for it."""
    app = _app_row(portal.store, client_id)
    event = event.upper()
    with portal.store.lock:
        bound = portal.store.conn.execute(
            "SELECT id, handler FROM ol_bindings WHERE client_id = ? AND event = ? ORDER BY id",
            (app["client_id"], event),
        ).fetchall()
    out = []
    for row in bound:
        body = {
            "event": event,
            "event_handler_id": row["id"],
            "data": data,
            "ts": int(time.time()),
            "auth": _auth(portal, app, user_id),
        }
        out.append(_post(portal.store, event, row["handler"], phpquery.encode(body)))
    return out


def _signature(store: SandboxStore, connector: str, user_id: int) -> str:
    if connector_of(store, connector).get("NEED_SIGNATURE", True) not in (True, "Y", "1", 1):
        return ""
    rows = store.rows("SELECT data FROM users WHERE id = ?", (user_id,))
    user = rows[0] if rows else {}
    name = " ".join(x for x in (user.get("NAME"), user.get("LAST_NAME")) if x) or "Оператор"
    return f"[b]{name}:[/b] [br]"


def _chat(store: SandboxStore, chat_id: int) -> dict[str, Any]:
    with store.lock:
        row = store.conn.execute("SELECT * FROM ol_chats WHERE chat_id = ?", (chat_id,)).fetchone()
    if row is None:
        raise HTTPException(404, f"no chat {chat_id}")
    return dict(row)


def _message(store: SandboxStore, message_id: int) -> dict[str, Any]:
    with store.lock:
        row = store.conn.execute(
            "SELECT * FROM ol_messages WHERE message_id = ? AND direction = 'out'", (message_id,)
        ).fetchone()
    if row is None:
        raise HTTPException(404, f"no operator message {message_id}")
    return dict(row)


def operator_message(portal: Portal, body: dict[str, Any]) -> dict[str, Any]:
    """An operator writes in the chat: stored, then ``OnImConnectorMessageAdd`` is fired. The
    admin UI's sandbox page calls this too, so its replies take the portal's own path."""
    store = portal.store
    chat = _chat(store, int(body["chat_id"]))
    user_id = int(body.get("user_id", 1))
    text = _signature(store, chat["connector"], user_id) + str(body.get("text") or "")
    files = []
    for f in body.get("files") or []:
        data = str(f.get("content") or "").encode()
        sign = secrets.token_hex(8)
        with store.tx() as c:
            cur = c.execute(
                "INSERT INTO ol_files (name, sign, data) VALUES (?, ?, ?)",
                (str(f["name"]), sign, data),
            )
            query = urlencode({"FILE_ID": cur.lastrowid, "SIGN": sign})
        app_row = _app_row(store, None)
        link = f"{app_row['base_url']}/pub/im.file.php?{query}"
        files.append({"name": str(f["name"]), "link": link, "type": "file", "size": len(data)})
    with store.tx() as c:
        cur = c.execute(
            "INSERT INTO ol_messages (chat_id, direction, author_id, text, files, status, at) "
            "VALUES (?, 'out', ?, ?, ?, 'sent', ?)",
            (
                chat["chat_id"],
                user_id,
                text,
                json.dumps(files, ensure_ascii=False),
                time.time(),
            ),
        )
        message_id = int(cur.lastrowid or 0)
    message: dict[str, Any] = {"user_id": user_id, "text": text}
    if files:
        message["files"] = files
    data = {
        "CONNECTOR": chat["connector"],
        "LINE": chat["line"],
        "MESSAGES": [
            {
                "im": {"chat_id": chat["chat_id"], "message_id": message_id},
                "message": message,
                "chat": {"id": chat["ext_chat_id"]},
            }
        ],
    }
    deliveries = fire(portal, "ONIMCONNECTORMESSAGEADD", data, user_id=user_id)
    return {"message_id": message_id, "deliveries": deliveries}


def open_placement(portal: Portal, body: dict[str, Any]) -> dict[str, Any]:
    """A user opens a widget: the portal POSTs its context to the app's handler."""
    store = portal.store
    app_row = _app_row(store, body.get("client_id"))
    placement = str(body["placement"]).upper()
    with store.lock:
        row = store.conn.execute(
            "SELECT handler FROM ol_placements WHERE client_id = ? AND placement = ? "
            "ORDER BY id DESC LIMIT 1",
            (app_row["client_id"], placement),
        ).fetchone()
    if row is None:
        raise HTTPException(404, f"no handler bound to {placement}")
    auth = _auth(portal, app_row, int(body.get("user_id", 1)))
    query = {"DOMAIN": auth["domain"], "PROTOCOL": 0, "LANG": "ru", "APP_SID": "sid"}
    form = {
        "AUTH_ID": auth["access_token"],
        "AUTH_EXPIRES": auth["expires_in"],
        "REFRESH_ID": portal.issue_tokens(app_row["client_id"], 1)["refresh_token"],
        "SERVER_ENDPOINT": auth["server_endpoint"],
        "APPLICATION_TOKEN": app_row["application_token"],
        "APPLICATION_SCOPE": auth["scope"],
        "member_id": auth["member_id"],
        "status": "L",
        "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": json.dumps(body.get("options") or {}),
    }
    sep = "&" if "?" in row["handler"] else "?"
    r = httpx.post(f"{row['handler']}{sep}{urlencode(query)}", data=form, timeout=30)
    return {"status": r.status_code, "html": r.text}


def add_routes(app: FastAPI, portal: Portal) -> None:
    store = portal.store

    @app.post("/_sandbox/apps/install")
    def install(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """An admin adds a local app: the portal posts the install callback to its URL."""
        client_id, secret = str(body["client_id"]), str(body["client_secret"])
        portal.register_app(client_id, secret)
        base = base_url(request)
        with store.tx() as c:
            row = c.execute(
                "SELECT application_token FROM ol_apps WHERE client_id = ?", (client_id,)
            ).fetchone()
            token = row[0] if row else secrets.token_hex(16)
            c.execute(
                "INSERT OR REPLACE INTO ol_apps VALUES (?, ?, ?, ?)",
                (client_id, token, base, str(body["install_url"])),
            )
        app_row = _app_row(store, client_id)
        auth = _auth(portal, app_row, int(body.get("user_id", 1)))
        auth["refresh_token"] = portal.issue_tokens(client_id, 1)["refresh_token"]
        payload = {
            "event": "ONAPPINSTALL",
            "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "ru"},
            "ts": int(time.time()),
            "auth": auth,
        }
        return _post(store, "ONAPPINSTALL", str(body["install_url"]), phpquery.encode(payload))

    @app.post("/_sandbox/openlines/operator-message")
    def operator_message_route(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """An operator writes in the chat: stored, then ``OnImConnectorMessageAdd`` is fired."""
        return operator_message(portal, body)

    @app.post("/_sandbox/openlines/messages/{message_id}/{action}")
    def change_message(
        message_id: int, action: str, body: dict[str, Any] = Body(default={})
    ) -> dict[str, Any]:
        """The operator edits or deletes a sent message."""
        if action not in ("edit", "delete"):
            raise HTTPException(404, "edit or delete")
        msg = _message(store, message_id)
        chat = _chat(store, msg["chat_id"])
        ids = json.loads(msg["delivered"] or "[]")
        text = _signature(store, chat["connector"], msg["author_id"]) + str(body.get("text") or "")
        with store.tx() as c:
            if action == "edit":
                c.execute(
                    "UPDATE ol_messages SET text = ? WHERE message_id = ?", (text, message_id)
                )
            else:
                c.execute(
                    "UPDATE ol_messages SET status = 'deleted' WHERE message_id = ?", (message_id,)
                )
        item = {
            "im": {"chat_id": chat["chat_id"], "message_id": message_id},
            "message": {"id": ids, "text": text}
            if action == "edit"
            else {"id": next(iter(ids), "")},
            "chat": {"id": chat["ext_chat_id"]},
        }
        event = "ONIMCONNECTORMESSAGEUPDATE" if action == "edit" else "ONIMCONNECTORMESSAGEDELETE"
        data = {"CONNECTOR": chat["connector"], "LINE": chat["line"], "MESSAGES": [item]}
        return {"deliveries": fire(portal, event, data, user_id=msg["author_id"])}

    @app.post("/_sandbox/events/fire")
    def fire_event(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Any event (OnImConnectorLineDelete, OnImConnectorStatusDelete, OnAppUninstall…)."""
        found = fire(portal, str(body["event"]), body.get("data"), client_id=body.get("client_id"))
        return {"deliveries": found}

    @app.post("/_sandbox/events/{log_id}/redeliver")
    def redeliver(log_id: int) -> dict[str, Any]:
        with store.lock:
            row = store.conn.execute(
                "SELECT * FROM ol_event_log WHERE id = ?", (log_id,)
            ).fetchone()
        if row is None:
            raise HTTPException(404, "no such event")
        return _post(store, row["event"], row["handler"], row["body"])

    @app.post("/_sandbox/placements/open")
    def open_placement_route(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """A user opens a widget: the portal POSTs its context to the app's handler."""
        return open_placement(portal, body)

    @app.get("/_sandbox/openlines/chats")
    def chats() -> dict[str, Any]:
        with store.lock:
            rows = [dict(r) for r in store.conn.execute("SELECT * FROM ol_chats ORDER BY chat_id")]
            msgs = [dict(r) for r in store.conn.execute("SELECT * FROM ol_messages ORDER BY 1")]
        for chat in rows:
            chat["data"] = json.loads(chat["data"])
            chat["messages"] = [
                {
                    **m,
                    "files": json.loads(m["files"]),
                    "delivered": json.loads(m["delivered"] or "[]"),
                }
                for m in msgs
                if m["chat_id"] == chat["chat_id"]
            ]
        return {"chats": rows}

    @app.get("/_sandbox/openlines/lines")
    def lines() -> dict[str, Any]:
        with store.lock:
            found = store.conn.execute("SELECT * FROM ol_line_connectors").fetchall()
        return {"lines": [{**dict(r), "data": json.loads(r["data"] or "null")} for r in found]}

    @app.get("/pub/im.file.php")
    def download(FILE_ID: int, SIGN: str) -> Response:  # noqa: N803 - the portal's names
        with store.lock:
            row = store.conn.execute("SELECT * FROM ol_files WHERE id = ?", (FILE_ID,)).fetchone()
        if row is None or not secrets.compare_digest(str(row["sign"]), SIGN):
            raise HTTPException(404, "file not found")
        return Response(bytes(row["data"]), media_type="application/octet-stream")
