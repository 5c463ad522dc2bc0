"""JSON API: appeals with their trace, jobs, rejected requests."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select

from hub.db import session_scope
from hub.http.params import MAX_ID, IdPath
from hub.models import Appeal, Job, RawEvent, RejectedRequest
from hub.storage import appeals as appeals_store
from hub.ui.security import require

router = APIRouter(prefix="/api")
# The API carries personal data (invariant 7): a UI session or a bearer token, and the role's
# permission, exactly as the pages that show the same rows.
READ_APPEALS = [Depends(require("appeals.read"))]
READ_QUEUE = [Depends(require("queue.read"))]


def appeal_json(a: Appeal, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": a.id,
        "channel": a.channel,
        "source": a.source,
        "kind": a.kind,
        "thread_key": a.thread_key,
        "author": {
            "name": a.author_name,
            "phone": a.author_phone,
            "email": a.author_email,
            "platform_id": a.author_platform_id,
        },
        "text": a.text,
        "received_at": a.received_at.isoformat(),
        "state": a.state,
        "topic": a.topic,
        "region": a.region,
        "department": a.department,
        "assignee": {
            "id": a.assignee_id,
            "name": a.assignee_name,
            "bitrix_user_id": a.bitrix_user_id,
        }
        if a.assignee_id
        else None,
        "filtered": a.filtered_reason,
        "rules_version": a.rules_version,
        "delivery": {
            "state": a.delivery_state,
            "entity": a.crm_entity,
            "entity_id": a.crm_entity_id,
            "contact_id": a.crm_contact_id,
            "visible_at": a.crm_visible_at.isoformat() if a.crm_visible_at else None,
            "error": a.delivery_error,
        },
    }
    if full:
        data.update(
            attachments=a.attachments,
            rating=a.rating,
            fields=a.fields,
            target=a.target,
            tags=a.tags,
            trace=a.trace,
            raw_event_id=a.raw_event_id,
            is_edit=a.is_edit,
        )
    return data


@router.get("/appeals", dependencies=READ_APPEALS)
def list_appeals(
    request: Request,
    channel: str | None = None,
    source: str | None = None,
    state: str | None = None,
    region: str | None = None,
    topic: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = Query(
        None, ge=1, le=MAX_ID, description="keyset cursor: the last id of the previous page"
    ),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    flt = appeals_store.AppealFilter(channel, source, state, region, topic, since, until)
    with session_scope(request.app.state.engine, read_only=True) as s:
        rows = appeals_store.list_page(s, flt=flt, limit=limit, before_id=before_id)
    items = [appeal_json(a) for a in rows]
    return {"items": items, "next_before_id": rows[-1].id if len(rows) == limit else None}


@router.get("/appeals/{appeal_id}", dependencies=READ_APPEALS)
def get_appeal(request: Request, appeal_id: IdPath) -> dict[str, Any]:
    with session_scope(request.app.state.engine, read_only=True) as s:
        appeal = appeals_store.get(s, appeal_id)
        if appeal is None:
            raise HTTPException(404, f"appeal {appeal_id} not found")
        raw = s.get(RawEvent, appeal.raw_event_id) if appeal.raw_event_id else None
        data = appeal_json(appeal, full=True)
        if raw is not None:
            data["raw_event"] = {
                "id": raw.id,
                "external_id": raw.external_id,
                "event_type": raw.event_type,
                "received_at": raw.received_at.isoformat(),
                "headers": raw.headers,
                "content_type": raw.content_type,
                "body": _body_text(raw.body),
                "state": raw.state,
            }
    return data


def _body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode()


@router.get("/jobs", dependencies=READ_QUEUE)
def list_jobs(
    request: Request,
    state: str | None = None,
    kind: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    q = select(Job).order_by(Job.id.desc()).limit(min(limit, 1000))
    if state:
        q = q.where(Job.state == state)
    if kind:
        q = q.where(Job.kind == kind)
    with session_scope(request.app.state.engine, read_only=True) as s:
        jobs = s.execute(q).scalars().all()
    return [
        {
            "id": j.id,
            "kind": j.kind,
            "key": j.key,
            "state": j.state,
            "attempts": j.attempts,
            "run_at": j.run_at.isoformat(),
            "last_error": j.last_error,
            "appeal_id": j.appeal_id,
        }
        for j in jobs
    ]


@router.get("/rejected", dependencies=READ_QUEUE)
def list_rejected(request: Request, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    q = select(RejectedRequest).order_by(RejectedRequest.id.desc()).limit(min(limit, 1000))
    with session_scope(request.app.state.engine, read_only=True) as s:
        rows = s.execute(q).scalars().all()
    return [
        {
            "id": r.id,
            "path": r.path,
            "status": r.status_code,
            "reason": r.reason,
            "received_at": r.received_at.isoformat(),
        }
        for r in rows
    ]
