"""Appeals: the list with filters at a million rows, one appeal with its "why", re-route, and
adding its author to the blacklist."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from ruamel.yaml.comments import CommentedMap

from hub import pipeline
from hub.db import session_scope
from hub.http.params import IdPath
from hub.storage import appeals as appeals_store
from hub.storage import rulesets
from hub.storage import ui_queries as q
from hub.storage.users import SessionUser
from hub.ui import drafts
from hub.ui.dir_yaml import SECTIONS, YamlDoc, styled
from hub.ui.i18n import DISPLAY_ZONE, N_, gettext
from hub.ui.labels import crm_link, labels
from hub.ui.security import require
from hub.ui.templating import is_htmx, render

router = APIRouter(prefix="/ui/appeals")
CHANNELS = ("vk", "telegram", "ok", "twogis", "yandex", "tilda", "form", "email", "mango", "uis")
KINDS = ("message", "comment", "review", "call", "form", "email")
STATES = ("new", "routed", "filtered", "delivered", "answered", "closed")
BLACKLIST_ID = "blacklist"
NO_APPEAL = N_("обращения %(n)s нет")


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A date typed in the filter is a Moscow day; ``end`` means the end of that day."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    moment = datetime.combine(day, time(0), tzinfo=DISPLAY_ZONE)
    return moment + timedelta(days=1) if end else moment


@router.get("")
def appeal_list(
    request: Request,
    channel: str = "",
    source: str = "",
    kind: str = "",
    region: str = "",
    topic: str = "",
    department: str = "",
    assignee: str = "",
    state: str = "",
    since: str = "",
    until: str = "",
    search: str = "",
    cursor: str = "",
    viewer: SessionUser = Depends(require("appeals.read")),
) -> Response:
    flt = q.UiAppealFilter(
        channel or None, source.strip() or None, kind or None, region or None, topic or None,
        department or None, assignee.strip() or None, state or None, _day(since),
        _day(until, end=True), search.strip() or None,
    )  # fmt: skip
    engine = request.app.state.engine
    with session_scope(engine, read_only=True) as s:
        page = q.appeal_page(s, flt=flt, limit=50, cursor=cursor or None)
    names = labels(engine)
    params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    ctx: dict[str, Any] = {"page": page, "names": names, "params": params}
    if is_htmx(request) and cursor:
        return render(request, "partials/appeal_rows.html", **ctx)
    return render(
        request, "pages/appeals.html", nav="appeals", channels=CHANNELS, kinds=KINDS,
        states=STATES, f=request.query_params, **ctx,
    )  # fmt: skip


def _raw_view(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        text = raw.body.decode("utf-8")
    except UnicodeDecodeError:
        text = gettext(N_("(%(n)s байт, не UTF-8)"), n=len(raw.body))
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    return {"row": raw, "text": text[:200_000]}


@router.get("/{appeal_id}")
def appeal_page(
    request: Request, appeal_id: IdPath, viewer: SessionUser = Depends(require("appeals.read"))
) -> Response:
    engine = request.app.state.engine
    with session_scope(engine, read_only=True) as s:
        appeal = appeals_store.get(s, appeal_id)
        if appeal is None:
            raise HTTPException(404, gettext(NO_APPEAL, n=appeal_id))
        raw = _raw_view(q.raw_event(s, appeal.raw_event_id))
        jobs = q.appeal_jobs(s, appeal_id)
        links = q.appeal_crm_links(s, appeal_id)
        replies = q.appeal_replies(s, appeal_id)
        thread = q.thread_appeals(s, appeal)
        published = rulesets.published_id(s)
    settings = request.app.state.settings
    return render(
        request, "pages/appeal.html", nav="appeals", a=appeal, raw=raw, jobs=jobs, links=links,
        replies=replies, thread=thread, published=published, names=labels(engine),
        deal_url=crm_link(settings, appeal.crm_entity, appeal.crm_entity_id),
        notice=request.query_params.get("notice"),
    )  # fmt: skip


def _snapshot(a: Any) -> dict[str, Any]:
    return {
        "rules_version": a.rules_version, "topic": a.topic, "region": a.region,
        "department": a.department, "assignee": a.assignee_id, "filtered": a.filtered_reason,
        "state": a.state,
    }  # fmt: skip


@router.post("/{appeal_id}/reroute")
def reroute(
    request: Request, appeal_id: IdPath, viewer: SessionUser = Depends(require("appeals.reroute"))
) -> Response:
    """Route again with the rules in force now; delivery is queued if it has not happened."""
    with session_scope(request.app.state.engine) as s:
        appeal = appeals_store.get(s, appeal_id)
        if appeal is None:
            raise HTTPException(404, gettext(NO_APPEAL, n=appeal_id))
        before = _snapshot(appeal)
        pipeline.route_appeal(s, appeal)
        q.add_audit(
            s, actor=viewer.login, action="appeal.reroute", object_type="appeal",
            object_id=str(appeal_id), details={"before": before, "after": _snapshot(appeal)},
        )  # fmt: skip
    return RedirectResponse(f"/ui/appeals/{appeal_id}?notice=rerouted", status_code=303)


def _blacklist_entries(appeal: Any) -> dict[str, str]:
    entries: dict[str, str] = {}
    if appeal.author_phone:
        entries["phones"] = appeal.author_phone
    if appeal.author_platform_id:
        entries["platform_ids"] = f"{appeal.channel}:{appeal.author_platform_id}"
    if appeal.author_email:
        entries["emails"] = appeal.author_email.lower()
    return entries


@router.post("/{appeal_id}/blacklist")
def blacklist(
    request: Request,
    appeal_id: IdPath,
    publish_now: bool = Form(False),
    viewer: SessionUser = Depends(require("appeals.blacklist")),
) -> Response:
    """The author's phone, platform id and e-mail go into the ``blacklist`` filter of the
    working draft; published at once only when asked and when the draft holds nothing else."""
    with session_scope(request.app.state.engine) as s:
        appeal = appeals_store.get(s, appeal_id)
        if appeal is None:
            raise HTTPException(404, gettext(NO_APPEAL, n=appeal_id))
        entries = _blacklist_entries(appeal)
        if not entries:
            return RedirectResponse(f"/ui/appeals/{appeal_id}?notice=no-author", 303)
        draft = drafts.ensure_draft(s, actor=viewer.login)
        published = rulesets.get_published(s)
        pristine = published is not None and draft.files == published.files
        doc = YamlDoc(draft.files.get("filters.yaml", ""), SECTIONS["filters"])
        if BLACKLIST_ID in doc.ids():
            entity = doc.get(BLACKLIST_ID)
        else:
            entity = CommentedMap(id=BLACKLIST_ID, reason="Отправитель в чёрном списке")
        for key, value in entries.items():
            current = list(entity.get(key) or [])
            if value not in current:
                entity[key] = styled([*current, value], entity.get(key))
        text = (
            doc.replaced(BLACKLIST_ID, entity)
            if BLACKLIST_ID in doc.ids()
            else doc.appended(BLACKLIST_ID, entity)
        )
        files = {**draft.files, "filters.yaml": text}
        result = drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login, what="blacklist",
            details={"appeal": appeal_id, "added": entries},
        )  # fmt: skip
        if not result.ok:
            raise HTTPException(422, "; ".join(str(p) for p in result.new_errors))
        notice = f"blacklisted:{draft.id}"
        if publish_now and pristine:
            draft.note = f"чёрный список: автор обращения #{appeal_id}"
            rulesets.publish(session=s, published_by=viewer.login, version_id=draft.id)
            notice = f"blacklist-published:{draft.id}"
        elif publish_now:
            notice = f"blacklist-draft-busy:{draft.id}"
    return RedirectResponse(f"/ui/appeals/{appeal_id}?notice={notice}", status_code=303)
