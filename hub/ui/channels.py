"""Channels: each configured source with its health (last event, refusals, poller), the webhook
URL to give the platform, secrets masked, and a test button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from hub import crypto
from hub.db import session_scope
from hub.http.params import IdPath
from hub.models import ChannelSource
from hub.storage import poller_cursors, unsupported_events
from hub.storage import sources as sources_store
from hub.storage import ui_queries as q
from hub.storage.users import SessionUser
from hub.ui import channel_checks
from hub.ui.i18n import N_, gettext
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/channels")


@dataclass
class SourceView:
    row: ChannelSource
    hook_url: str
    secrets: dict[str, str]  # masked
    secret_error: bool
    health: q.SourceHealth
    pollers: list[Any]


def hook_url(request: Request, row: ChannelSource) -> str:
    base = request.app.state.settings.effective_public_url()
    return f"{base}/hooks/{row.channel}/{row.source}"


def _masked(row: ChannelSource) -> tuple[dict[str, str], bool]:
    try:
        secrets = sources_store.to_config(row).secrets
    except crypto.SecretKeyError:
        return {}, True
    return {k: crypto.mask(str(v)) for k, v in secrets.items()}, False


@router.get("")
def channels_page(
    request: Request, viewer: SessionUser = Depends(require("channels.read"))
) -> Response:
    engine = request.app.state.engine
    with session_scope(engine, read_only=True) as s:
        rows = sources_store.list_all(s)
        health = q.source_health(s, rows)
        unsupported = unsupported_events.summary(s)
    cursors = poller_cursors.list_all(engine)
    views = []
    for row in rows:
        secrets, broken = _masked(row)
        mine = [
            c for c in cursors
            if c.name.endswith(f":{row.source}") and c.name.split("-")[0] == row.channel
        ]  # fmt: skip
        assert row.id is not None
        views.append(SourceView(row, hook_url(request, row), secrets, broken, health[row.id], mine))
    return render(
        request, "pages/channels.html", nav="channels", views=views, unsupported=unsupported,
        orphans=[c for c in cursors if not any(c in v.pollers for v in views)],
    )  # fmt: skip


@router.post("/{source_id}/test")
def test_source(
    request: Request, source_id: IdPath, viewer: SessionUser = Depends(require("channels.test"))
) -> Response:
    with session_scope(request.app.state.engine, read_only=True) as s:
        row = s.get(ChannelSource, source_id)
        if row is None:
            raise HTTPException(404, gettext(N_("нет такого источника")))
    checks = channel_checks.run(row, hook_url(request, row))
    return render(request, "partials/channel_test.html", checks=checks, row=row)
