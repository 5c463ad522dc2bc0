"""Single sign-on from the Bitrix24 portal: the «ClientHub» item of the left menu (``LEFT_MENU``).

The portal POSTs the placement call here (docs: api-reference/widgets/left-menu.md). ``DOMAIN``
and ``APPLICATION_TOKEN`` prove the call comes through the installed application on the pinned
portal, but the token is the same for every portal user, so it does not say *who*: that comes
from ``user.current`` with the user's own ``AUTH_ID``, asked at the endpoint stored at install.
The ClientHub user linked to that Bitrix24 user (``ui_users.bitrix_user_id``, set by an
administrator) is the one signed in; nobody is linked automatically (by e-mail or name).

The page lives in the portal's iframe, where browsers drop third-party cookies, so it cannot
hold a ClientHub session. It shows a button that opens ``/ui/sso/<ticket>`` in a new top-level
tab, where the session cookie is first-party (hub/ui/auth.py exchanges the ticket). A ticket is
random, lives :data:`TICKET_TTL`, works once, and is kept as its SHA-256 in its own table
(``ui_sso_tickets``), so it can never pass for a session cookie or an API token.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Engine

from hub.bitrix24.app_events import read_form, templates, verify_app
from hub.bitrix24.placement import PortalUser, portal_user
from hub.db import session_scope
from hub.settings import Settings
from hub.storage import users as users_store
from hub.timeutil import utcnow
from hub.ui.security import new_token

router = APIRouter(prefix="/bitrix24", tags=["bitrix24"])
log = logging.getLogger("clienthub.bitrix24")
TICKET_TTL = timedelta(minutes=2)
SSO_PATH = "/ui/sso"


def issue(engine: Engine, person: PortalUser) -> tuple[str, str | None, str | None]:
    """(state, ticket, ClientHub login): ``ticket`` for an enabled linked user, otherwise
    ``unlinked`` or ``disabled`` and no ticket."""
    with session_scope(engine) as s:
        user = users_store.get_by_bitrix_user(s, person.id)
        if user is None:
            return "unlinked", None, None
        if not user.enabled:
            return "disabled", None, user.login
        ticket, digest = new_token()
        users_store.issue_ticket(s, user=user, token_hash=digest, expires_at=utcnow() + TICKET_TTL)
        return "ticket", ticket, user.login


def _page(
    request: Request, status: int, state: str, person: PortalUser | None, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        "bitrix24/sso.html",
        {"state": state, "person": person, "minutes": int(TICKET_TTL.total_seconds() // 60)}
        | context,
        status_code=status,
    )
    response.headers["cache-control"] = "no-store"  # the page carries a one-time ticket
    return response


@router.post("/sso", response_class=HTMLResponse)
async def sso_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    form = await read_form(request)
    tokens = verify_app(engine, settings, form.get("DOMAIN"), form.get("APPLICATION_TOKEN"))
    member = form.get("member_id")
    if member and tokens.member_id and member != tokens.member_id:
        raise HTTPException(403, "member_id does not match the installed portal")
    person = await run_in_threadpool(portal_user, tokens, form.get("AUTH_ID"))
    if person is None:
        return _page(request, 403, "unknown", None)
    state, ticket, login = await run_in_threadpool(issue, engine, person)
    log.info(
        "bitrix24 sign-in page",
        extra={
            "portal": tokens.domain,
            "bitrix_user_id": person.id,
            "state": state,
            "login": login,
        },
    )
    if state != "ticket":
        return _page(request, 403 if state == "disabled" else 200, state, person)
    link = f"{settings.effective_public_url()}{SSO_PATH}/{ticket}"
    return _page(request, 200, state, person, link=link, login=login)
