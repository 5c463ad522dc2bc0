"""``POST /bitrix24/install``: the local application's install callback ("initial installation
path"). Bitrix24 posts the OAuth tokens here right after an admin adds the app (docs:
settings/app-installation/local-apps/installation-callback.md); we store them encrypted."""

from __future__ import annotations

import hmac
import logging

import httpx
from fastapi import APIRouter, HTTPException, Request

from hub.bitrix24 import app_setup, phpquery
from hub.bitrix24.factory import portal_mode, sandbox_url
from hub.bitrix24.oauth import InstallError, parse_install
from hub.db import session_scope
from hub.storage import b24_tokens

router = APIRouter(prefix="/bitrix24", tags=["bitrix24"])
log = logging.getLogger("clienthub.bitrix24")


@router.post("/install")
async def install(request: Request) -> dict[str, object]:
    settings = request.app.state.settings
    engine = request.app.state.engine
    pinned = settings.b24_portal_domain.strip().lower()
    # The sandbox portal's built-in app installs ClientHub on itself (hub/bitrix24/app_setup.py).
    sandbox_app = not settings.b24_client_id and not pinned and portal_mode(settings) == "sandbox"
    # Bitrix24 posts the callback when the admin saves the app form and shows the app's keys
    # only after that (docs: local-integrations/serverside-local-app-with-no-ui.md): with the
    # portal pinned, the callback is accepted before the keys are configured.
    if not settings.b24_client_id and not sandbox_app and not pinned:
        # No application configured: the endpoint is off rather than open to anyone.
        raise HTTPException(404, "no Bitrix24 application is configured")
    body = (await request.body()).decode("utf-8", "replace")
    ctype = request.headers.get("content-type", "")
    try:
        form = await request.json() if "json" in ctype else phpquery.parse(body)
        tokens = parse_install(form)
    except (InstallError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from None
    if sandbox_app:
        pinned = httpx.URL(sandbox_url(settings)).netloc.decode().lower()
    if pinned and tokens.domain != pinned:
        raise HTTPException(403, "this ClientHub is bound to another portal")
    with session_scope(engine) as s:
        stored = b24_tokens.load(s, tokens.domain, settings)
        # A reinstall must come from the same application (its application_token), so a stranger
        # cannot swap the tokens of an installed portal.
        if (
            stored
            and stored.application_token
            and not hmac.compare_digest(
                stored.application_token.encode(), (tokens.application_token or "").encode()
            )
        ):
            raise HTTPException(403, "application_token does not match the installed application")
        b24_tokens.save(s, tokens, settings)
        app_setup.enqueue_setup(s, tokens.domain)  # connector, events, deal-card action
    log.info("bitrix24 application installed", extra={"portal": tokens.domain})
    return {"installed": True, "domain": tokens.domain}
