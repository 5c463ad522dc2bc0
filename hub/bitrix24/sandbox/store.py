"""The sandbox portal's state in its own SQLite file: CRM items, comments, pipelines, users,
calls, OAuth apps and tokens, and the log of every call received."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type_id INTEGER NOT NULL,
  originator_id TEXT, origin_id TEXT, data TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_items_origin ON items (entity_type_id, originator_id, origin_id);
CREATE TABLE IF NOT EXISTS comms (
  item_id INTEGER NOT NULL, entity_type_id INTEGER NOT NULL, type_id TEXT NOT NULL,
  value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_comms_value ON comms (type_id, value);
CREATE TABLE IF NOT EXISTS comments (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL,
  data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_comments_owner ON comments (entity_type, entity_id);
CREATE TABLE IF NOT EXISTS categories (
  entity_type_id INTEGER NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (entity_type_id, id));
CREATE TABLE IF NOT EXISTS statuses (
  id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, status_id TEXT NOT NULL,
  data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS departments (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tel_calls (call_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  access_token TEXT PRIMARY KEY, refresh_token TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL,
  user_id INTEGER NOT NULL, expires REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS calls (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, method TEXT NOT NULL,
  params TEXT NOT NULL, status INTEGER, error TEXT, parent INTEGER, auth TEXT);
"""

CRM_TABLES = ("items", "comms", "comments", "tel_calls", "calls")


class SandboxStore:
    """One connection behind a lock: the sandbox serialises requests like a single PHP worker."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # a test portal: speed over durability
        self.conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # -- generic JSON rows ---------------------------------------------------------------------
    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["data"]) for r in self.conn.execute(sql, args)]

    def scalar(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self.lock:
            row = self.conn.execute(sql, args).fetchone()
            return None if row is None else row[0]

    # -- CRM items -----------------------------------------------------------------------------
    def insert_item(self, entity_type_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO items (entity_type_id, originator_id, origin_id, data, created_at) "
                "VALUES (?, ?, ?, '{}', ?)",
                (entity_type_id, data.get("originatorId"), data.get("originId"), time.time()),
            )
            item_id = int(cur.lastrowid or 0)
            data = {**data, "id": item_id, "entityTypeId": entity_type_id}
            self._write_item(c, data)
            return data

    def update_item(self, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM comms WHERE item_id = ?", (data["id"],))
            self._write_item(c, data)

    def _write_item(self, c: sqlite3.Connection, data: dict[str, Any]) -> None:
        c.execute(
            "UPDATE items SET data = ?, originator_id = ?, origin_id = ? WHERE id = ?",
            (
                json.dumps(data, ensure_ascii=False),
                data.get("originatorId"),
                data.get("originId"),
                data["id"],
            ),
        )
        for fm in data.get("fm") or []:
            c.execute(
                "INSERT INTO comms (item_id, entity_type_id, type_id, value) VALUES (?, ?, ?, ?)",
                (data["id"], data["entityTypeId"], fm["typeId"], fm["norm"]),
            )

    def delete_item(self, item_id: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM items WHERE id = ?", (item_id,))
            c.execute("DELETE FROM comms WHERE item_id = ?", (item_id,))

    def get_item(self, entity_type_id: int, item_id: int) -> dict[str, Any] | None:
        found = self.rows(
            "SELECT data FROM items WHERE entity_type_id = ? AND id = ?", (entity_type_id, item_id)
        )
        return found[0] if found else None

    def items(self, entity_type_id: int, origin_ids: list[str] | None = None) -> list[dict]:
        if origin_ids is not None:
            marks = ",".join("?" * len(origin_ids)) or "NULL"
            return self.rows(
                f"SELECT data FROM items WHERE entity_type_id = ? AND origin_id IN ({marks}) "
                "ORDER BY id",
                (entity_type_id, *origin_ids),
            )
        return self.rows(
            "SELECT data FROM items WHERE entity_type_id = ? ORDER BY id", (entity_type_id,)
        )

    def find_by_comm(self, type_id: str, values: list[str], entity_type_id: int) -> list[int]:
        marks = ",".join("?" * len(values))
        with self.lock:
            return [
                int(r[0])
                for r in self.conn.execute(
                    f"SELECT DISTINCT item_id FROM comms WHERE type_id = ? AND entity_type_id = ? "
                    f"AND value IN ({marks}) ORDER BY item_id",
                    (type_id, entity_type_id, *values),
                )
            ]

    def count_items(self) -> dict[int, int]:
        with self.lock:
            return {
                int(r[0]): int(r[1])
                for r in self.conn.execute(
                    "SELECT entity_type_id, count(*) FROM items GROUP BY entity_type_id"
                )
            }

    # -- timeline comments ---------------------------------------------------------------------
    def insert_comment(self, entity_type: str, entity_id: int, data: dict[str, Any]) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO comments (entity_type, entity_id, data) VALUES (?, ?, '{}')",
                (entity_type, entity_id),
            )
            cid = int(cur.lastrowid or 0)
            data = {**data, "ID": str(cid)}
            c.execute("UPDATE comments SET data = ? WHERE id = ?", (json.dumps(data), cid))
            return cid

    def comments(self, entity_type: str, entity_id: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT data FROM comments WHERE entity_type = ? AND entity_id = ? ORDER BY id",
            (entity_type, entity_id),
        )

    def comment(self, comment_id: int) -> dict[str, Any] | None:
        found = self.rows("SELECT data FROM comments WHERE id = ?", (comment_id,))
        return found[0] if found else None

    # -- call log ------------------------------------------------------------------------------
    def log_call(
        self,
        method: str,
        params: Any,
        *,
        status: int,
        error: str | None,
        parent: int | None = None,
        auth: str | None = None,
        at: float | None = None,
    ) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO calls (at, method, params, status, error, parent, auth) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    at or time.time(),
                    method,
                    json.dumps(params, ensure_ascii=False, default=str),
                    status,
                    error,
                    parent,
                    auth,
                ),
            )
            return int(cur.lastrowid or 0)

    def finish_call(self, call_id: int, status: int, error: str | None) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE calls SET status = ?, error = ? WHERE id = ?", (status, error, call_id)
            )

    def calls(self, since: int = 0, method: str | None = None, top: bool = False) -> list[dict]:
        sql = "SELECT * FROM calls WHERE id > ?"
        args: list[Any] = [since]
        if method:
            sql += " AND method = ?"
            args.append(method)
        if top:
            sql += " AND parent IS NULL"
        with self.lock:
            return [
                {**dict(r), "params": json.loads(r["params"])}
                for r in self.conn.execute(sql + " ORDER BY id", args)
            ]

    def reset(self) -> None:
        with self.tx() as c:
            for table in (*CRM_TABLES, "categories", "statuses", "users", "departments"):
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM sqlite_sequence")
