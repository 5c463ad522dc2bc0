"""The audit log: who changed what in the directory, users and settings, with before/after."""

from __future__ import annotations

import difflib
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.db import session_scope
from hub.models import AuditEntry
from hub.storage import ui_queries as q
from hub.storage.users import SessionUser
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/audit")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def change_lines(entry: AuditEntry) -> list[str]:
    """Before/after as a unified diff; a stored diff as it is; nothing otherwise."""
    details = entry.details or {}
    if "before" in details or "after" in details:
        return list(
            difflib.unified_diff(
                _text(details.get("before")).splitlines(),
                _text(details.get("after")).splitlines(),
                "до",
                "после",
                lineterm="",
                n=3,
            )
        )
    diff = details.get("diff")
    return diff.splitlines() if isinstance(diff, str) else []


@router.get("")
def audit_page(
    request: Request,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    before_id: int | None = None,
    viewer: SessionUser = Depends(require("audit.read")),
) -> Response:
    with session_scope(request.app.state.engine, read_only=True) as s:
        entries = q.audit_page(
            s, actor=actor.strip() or None, action=action.strip() or None,
            object_type=object_type or None, limit=50, before_id=before_id,
        )  # fmt: skip
    rows = [
        (e, change_lines(e), {k: v for k, v in (e.details or {}).items()
                              if k not in ("before", "after", "diff")})
        for e in entries
    ]  # fmt: skip
    return render(
        request, "pages/audit.html", nav="audit", rows=rows, actor=actor, action=action,
        object_type=object_type, next_before=entries[-1].id if len(entries) == 50 else None,
    )  # fmt: skip
