"""Seed the sandbox portal's pipelines, stages, users and departments from routing_rules/sample.

Read, in order: ``bitrix24.yaml`` (pipelines with stages, users, departments, sources), then
``employees.csv`` for users with a Bitrix24 user id. Whatever is missing falls back to what a
fresh portal has: pipeline 0 with NEW, PREPARATION, WON, LOSE, the standard lead statuses and
sources, and user 1 (the webhook's owner).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.bitrix24.sandbox.store import SandboxStore

DEFAULT_STAGES = [
    ("NEW", "Новая", "process"),
    ("PREPARATION", "Подготовка", "process"),
    ("WON", "Сделка успешна", "success"),
    ("LOSE", "Сделка провалена", "failure"),
]
LEAD_STATUSES = [
    ("NEW", "Не обработан", "process"),
    ("IN_PROCESS", "В работе", "process"),
    ("PROCESSED", "Обработан", "process"),
    ("CONVERTED", "Качественный", "success"),
    ("JUNK", "Некачественный", "failure"),
]
SOURCES = ["CALL", "EMAIL", "WEB", "WEBFORM", "CALLBACK", "ADVERTISING", "PARTNER", "OTHER"]
_USER_ID_COLUMNS = ("bitrix_user_id", "b24_user_id", "bitrix24_user_id", "bitrix_id", "b24_id")


@dataclass
class Seed:
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    lead_statuses: list[tuple[str, str, str]] = field(default_factory=lambda: list(LEAD_STATUSES))
    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    departments: dict[int, dict[str, Any]] = field(default_factory=dict)
    dept_ids: dict[str, int] = field(default_factory=dict)


def _stage(raw: Any) -> tuple[str, str, str]:
    if isinstance(raw, str):
        return raw, raw, "process"
    sid = str(raw.get("id") or raw.get("status_id") or raw.get("code"))
    semantics = str(raw.get("semantics") or "process")
    if sid.split(":")[-1] == "WON":
        semantics = "success"
    elif sid.split(":")[-1] == "LOSE":
        semantics = "failure"
    return sid, str(raw.get("name") or sid), semantics


def load_seed(seed_dir: Path | None) -> Seed:
    seed = Seed()
    data: dict[str, Any] = {}
    if seed_dir is not None and (seed_dir / "bitrix24.yaml").exists():
        data = yaml.safe_load((seed_dir / "bitrix24.yaml").read_text(encoding="utf-8")) or {}
    for raw in data.get("pipelines") or data.get("categories") or []:
        stages = [_stage(s) for s in raw.get("stages") or []] or DEFAULT_STAGES
        seed.pipelines.append(
            {
                "id": int(raw.get("id", 0)),
                "name": str(raw.get("name") or "Воронка"),
                "stages": stages,
            }
        )
    if not any(p["id"] == 0 for p in seed.pipelines):
        seed.pipelines.insert(0, {"id": 0, "name": "Общая", "stages": DEFAULT_STAGES})
    lead = data.get("lead_statuses") or data.get("lead_stages")
    if lead:
        seed.lead_statuses = [_stage(s) for s in lead]
    seed.sources = list(dict.fromkeys([*SOURCES, *(str(s) for s in data.get("sources") or [])]))
    _load_departments(seed, seed_dir, data)
    for raw in data.get("users") or []:
        _add_user(seed, raw)
    if seed_dir is not None and (seed_dir / "employees.csv").exists():
        with (seed_dir / "employees.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                column = next((c for c in _USER_ID_COLUMNS if row.get(c)), None)
                if column and int(row[column]) not in seed.users:
                    _add_user(seed, {**row, "id": row[column]})
    if 1 not in seed.users:
        _add_user(seed, {"id": 1, "name": "Администратор", "last_name": "ClientHub"})
    return seed


def _load_departments(seed: Seed, seed_dir: Path | None, data: dict[str, Any]) -> None:
    """Departments are codes in routing_rules (``hotline``) and numbers in Bitrix24: code n-th in
    ``departments.yaml`` becomes id n+1, under the root department 1."""
    raw: Any = data.get("departments")
    if not raw and seed_dir is not None and (seed_dir / "departments.yaml").exists():
        loaded = yaml.safe_load((seed_dir / "departments.yaml").read_text(encoding="utf-8"))
        raw = (loaded or {}).get("departments")
    seed.departments[1] = {"ID": "1", "NAME": "Компания", "PARENT": "", "SORT": 500}
    items = raw.items() if isinstance(raw, dict) else [(d.get("id"), d) for d in raw or []]
    for n, (code, body) in enumerate(items, start=2):
        body = body or {}
        did = int(code) if str(code).isdigit() else n
        seed.dept_ids[str(code)] = did
        seed.departments[did] = {
            "ID": str(did),
            "NAME": str(body.get("name") or code),
            "PARENT": "1",
            "SORT": 500,
            "CODE": str(code),
        }


def _add_user(seed: Seed, raw: dict[str, Any]) -> None:
    uid = int(raw["id"])
    name = str(raw.get("name") or raw.get("full_name") or f"Сотрудник {uid}")
    first, _, rest = name.partition(" ")
    code = str(raw.get("department_id") or raw.get("department") or "")
    dept = seed.dept_ids.get(code) or (int(code) if code.isdigit() else 1)
    seed.users[uid] = {
        "ID": str(uid),
        "ACTIVE": True,
        "NAME": raw.get("first_name") or first,
        "LAST_NAME": raw.get("last_name") or rest,
        "EMAIL": raw.get("email") or "",
        "UF_DEPARTMENT": [dept],
        "USER_TYPE": "employee",
        "WORK_POSITION": raw.get("position") or "",
    }


def apply_seed(store: SandboxStore, seed: Seed) -> None:
    with store.tx() as c:
        for p in seed.pipelines:
            cat = {
                "id": p["id"],
                "name": p["name"],
                "sort": 100 + p["id"],
                "entityTypeId": 2,
                "isDefault": "Y" if p["id"] == 0 else "N",
                "originId": "",
                "originatorId": "",
            }
            c.execute(
                "INSERT OR REPLACE INTO categories VALUES (2, ?, ?)",
                (p["id"], json.dumps(cat, ensure_ascii=False)),
            )
            entity = "DEAL_STAGE" if p["id"] == 0 else f"DEAL_STAGE_{p['id']}"
            for sort, (sid, name, sem) in enumerate(p["stages"], start=1):
                if p["id"] and not sid.startswith(f"C{p['id']}:"):
                    sid = f"C{p['id']}:{sid}"
                _status(c, entity, sid, name, sort * 10, p["id"], sem)
        for sort, (sid, name, sem) in enumerate(seed.lead_statuses, start=1):
            _status(c, "STATUS", sid, name, sort * 10, None, sem)
        for sort, sid in enumerate(seed.sources, start=1):
            _status(c, "SOURCE", sid, sid.title(), sort * 10, None, "process")
        for uid, user in seed.users.items():
            c.execute(
                "INSERT OR REPLACE INTO users VALUES (?, ?)",
                (uid, json.dumps(user, ensure_ascii=False)),
            )
        for did, dept in seed.departments.items():
            c.execute(
                "INSERT OR REPLACE INTO departments VALUES (?, ?)",
                (did, json.dumps(dept, ensure_ascii=False)),
            )


def _status(c: Any, entity: str, sid: str, name: str, sort: int, cat: int | None, sem: str) -> None:
    semantics = {"success": "S", "failure": "F"}.get(sem, "")
    row = {
        "ENTITY_ID": entity,
        "STATUS_ID": sid,
        "NAME": name,
        "NAME_INIT": name,
        "SORT": sort,
        "SYSTEM": "N",
        "CATEGORY_ID": cat,
        "COLOR": "#39A8EF",
        "SEMANTICS": semantics or None,
        "EXTRA": {"SEMANTICS": sem},
    }
    cur = c.execute(
        "INSERT INTO statuses (entity_id, status_id, data) VALUES (?, ?, '{}')", (entity, sid)
    )
    row["ID"] = str(cur.lastrowid)
    c.execute(
        "UPDATE statuses SET data = ? WHERE id = ?",
        (json.dumps(row, ensure_ascii=False), cur.lastrowid),
    )
