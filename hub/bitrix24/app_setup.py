"""ClientHub as a Bitrix24 local application: the app-context client, the handler URLs, and the
setup that follows every install (connector, events, deal-card placement).

``imconnector.*``, ``event.bind`` and ``placement.bind`` refuse webhook calls
(``WRONG_AUTH_TYPE``), so Open Lines always run on the application's OAuth tokens: those of the
installed local app (``CLIENTHUB_B24_CLIENT_ID``), or, in sandbox mode, those of the sandbox
portal's built-in app, which ClientHub installs on itself at start (:func:`sandbox_self_install`).
Handlers are removed when an app is reinstalled or updated (docs: api-reference/events/
event-bind.md), so the setup job runs after every install callback and binds what is missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import queue
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.errors import Bitrix24Error, MethodError
from hub.bitrix24.factory import NotConfigured, portal_mode, sandbox_url
from hub.bitrix24.oauth import OAuthAuth, TokenManager
from hub.bitrix24.ratelimit import DbRateLimiter
from hub.db import session_scope
from hub.jobs import JobContext, JobHandler
from hub.settings import Settings, get_settings
from hub.storage import b24_tokens
from hub.timeutil import utcnow

log = logging.getLogger("clienthub.bitrix24")

SETUP_KIND = "bitrix24.app.setup"
EVENTS = (
    "OnImConnectorMessageAdd",
    "OnImConnectorMessageUpdate",
    "OnImConnectorMessageDelete",
    "OnImConnectorLineDelete",
    "OnImConnectorStatusDelete",
    "OnAppUninstall",
)
DEAL_PLACEMENT = "CRM_DEAL_DETAIL_ACTIVITY"
MENU_PLACEMENT = "LEFT_MENU"  # docs: api-reference/widgets/left-menu.md (no OPTIONS there)
# task: the "call back" task of a missed call (tasks.task.add, hub/bitrix24/telephony.py).
SCOPES = "crm,imopenlines,imconnector,im,placement,user,department,telephony,task"
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><path fill="#fff" '
    'd="M12 14h40a4 4 0 0 1 4 4v22a4 4 0 0 1-4 4H30l-10 8v-8h-8a4 4 0 0 1-4-4V18a4 4 0 0 1 '
    "4-4zm8 12a3 3 0 1 0 0 6 3 3 0 0 0 0-6zm12 0a3 3 0 1 0 0 6 3 3 0 0 0 0-6zm12 0a3 3 0 1 0 0 "
    '6 3 3 0 0 0 0-6z"/></svg>'
)
ICON_DATA = "data:image/svg+xml," + quote(_SVG, safe="")


# -- where Bitrix24 reaches ClientHub ----------------------------------------------------------
def events_url(settings: Settings) -> str:
    return f"{settings.effective_public_url()}/bitrix24/events"


def install_url(settings: Settings) -> str:
    return f"{settings.effective_public_url()}/bitrix24/install"


def connector_settings_url(settings: Settings) -> str:
    return f"{settings.effective_public_url()}/bitrix24/connector"


def deal_placement_url(settings: Settings) -> str:
    return f"{settings.effective_public_url()}/bitrix24/placement/deal"


def sso_url(settings: Settings) -> str:
    """The left-menu item's page (hub/bitrix24/sso.py)."""
    return f"{settings.effective_public_url()}/bitrix24/sso"


def connector_id(settings: Settings) -> str:
    return settings.b24_connector_id.strip().lower()


# -- the application-context client ------------------------------------------------------------
def app_credentials(settings: Settings) -> tuple[str, str, str]:
    """(client_id, client_secret, oauth token URL) of the app whose tokens ClientHub holds."""
    if settings.b24_client_id:
        return (
            settings.b24_client_id,
            settings.b24_client_secret.get_secret_value(),
            settings.b24_oauth_url,
        )
    if portal_mode(settings) == "sandbox":
        return (
            settings.sandbox_app_client_id,
            settings.sandbox_app_client_secret.get_secret_value(),
            f"{sandbox_url(settings)}/oauth/token/",
        )
    raise NotConfigured(
        "Open Lines need ClientHub installed as a Bitrix24 local application "
        "(CLIENTHUB_B24_CLIENT_ID); see `clienthub bitrix24 install`"
    )


def app_enabled(settings: Settings) -> bool:
    return bool(settings.b24_client_id) or portal_mode(settings) == "sandbox"


def app_client(
    settings: Settings, engine: Engine, *, transport: httpx.BaseTransport | None = None
) -> Bitrix24Client:
    client_id, secret, oauth_url = app_credentials(settings)
    with session_scope(engine, read_only=True) as s:
        row = b24_tokens.get_row(s, settings.b24_portal_domain or None)
    if row is None:
        raise NotConfigured("the Bitrix24 application is not installed yet")
    manager = TokenManager(
        engine,
        domain=row.domain,
        client_id=client_id,
        client_secret=secret,
        oauth_url=oauth_url,
        settings=settings,
    )
    limiter = DbRateLimiter(
        engine,
        # The portal counts per portal and source IP, whichever way we authenticate.
        f"b24:{row.domain.split(':')[0]}",
        burst=settings.b24_rate_burst,
        rate=settings.b24_rate_per_second,
    )
    return Bitrix24Client(
        OAuthAuth(manager),
        timeout=settings.b24_timeout_seconds,
        limiter=limiter,
        transport=transport,
    )


def portal_base(engine: Engine, settings: Settings) -> str:
    """``https://portal`` (links to deals and chats), from the installed app's endpoint."""
    with session_scope(engine, read_only=True) as s:
        row = b24_tokens.get_row(s, settings.b24_portal_domain or None)
    endpoint = (row.client_endpoint if row else None) or ""
    return endpoint.rstrip("/").removesuffix("/rest")


# -- setup after install -----------------------------------------------------------------------
def enqueue_setup(session: Session, domain: str) -> None:
    """Called in the install callback's transaction: every (re)install binds again."""
    queue.enqueue(session, SETUP_KIND, f"{domain}:{utcnow().isoformat()}", {"domain": domain})


def register_params(settings: Settings) -> dict[str, object]:
    return {
        "ID": connector_id(settings),
        "NAME": settings.b24_connector_name,
        "ICON": {"DATA_IMAGE": ICON_DATA, "COLOR": "#2f6fde", "SIZE": "90%", "POSITION": "center"},
        "ICON_DISABLED": {"DATA_IMAGE": ICON_DATA, "COLOR": "#9aa5b1", "SIZE": "90%"},
        "PLACEMENT_HANDLER": connector_settings_url(settings),
        # One chat per conversation (our chat.id), as ClientHub keeps one deal per thread; group
        # mode also keeps Bitrix24's CRM tracker from creating a second deal (docs:
        # imconnector-register.md, CHAT_GROUP).
        "CHAT_GROUP": True,
        "NEED_SIGNATURE": True,  # customers see who answered; hub/replies.py reformats it
        "NEED_SYSTEM_MESSAGES": False,  # Bitrix24's own service texts must not reach customers
        "NEWSLETTER": False,
        "DEL_EXTERNAL_MESSAGES": True,
        "EDIT_INTERNAL_MESSAGES": True,
        "DEL_INTERNAL_MESSAGES": True,
    }


def placement_specs() -> list[tuple[str, str, dict[str, object]]]:
    """(placement, handler path, the rest of placement.bind's parameters) of every widget."""
    return [
        (
            DEAL_PLACEMENT,
            "/bitrix24/placement/deal",
            {
                "TITLE": "Ответить клиенту",
                "LANG_ALL": {
                    "ru": {"TITLE": "Ответить клиенту"},
                    "en": {"TITLE": "Reply to the customer"},
                },
                "OPTIONS": {"useBuiltInInterface": "Y"},
            },
        ),
        (
            MENU_PLACEMENT,
            "/bitrix24/sso",
            {
                "TITLE": "ClientHub",
                "LANG_ALL": {"ru": {"TITLE": "ClientHub"}, "en": {"TITLE": "ClientHub"}},
            },
        ),
    ]


def _bind_placement(
    client: Bitrix24Client,
    placements: list[dict[str, object]],
    code: str,
    page: str,
    path: str,
    params: dict[str, object],
) -> int:
    """Bind ``code`` to ``page`` unless bound already; drop our handler left at an old public
    URL (recognised by its ``path``). 1 when bound now."""
    present = False
    for row in placements:
        if str(row.get("placement", "")).upper() != code:
            continue
        url = str(row.get("handler", ""))
        if url == page:
            present = True
        elif url.endswith(path):
            client.call("placement.unbind", {"PLACEMENT": code, "HANDLER": url})
    if present:
        return 0
    client.call("placement.bind", {"PLACEMENT": code, "HANDLER": page, **params})
    return 1


def setup(client: Bitrix24Client, settings: Settings) -> dict[str, int]:
    """Register the connector, bind the events, the deal-card action and the left-menu item;
    bind only what is missing (a duplicate bind is an error) and drop bindings left at an old
    public URL."""
    done = {"events_bound": 0, "events_unbound": 0, "placements_bound": 0}
    answer = client.call("imconnector.register", register_params(settings), safe=True).result
    if not (isinstance(answer, dict) and answer.get("result")):
        code = str(answer.get("error", "")) if isinstance(answer, dict) else ""
        desc = str(answer.get("error_description", "")) if isinstance(answer, dict) else ""
        raise MethodError("imconnector.register", code, desc)
    handler = events_url(settings)
    ours = {e.upper() for e in EVENTS}
    bound = client.call("event.get").result or []
    have: set[str] = set()
    for row in bound:
        event, url = str(row.get("event", "")).upper(), str(row.get("handler", ""))
        if event not in ours:
            continue
        if url == handler:
            have.add(event)
        elif url.endswith("/bitrix24/events"):  # ours, at a public URL that has changed
            client.call("event.unbind", {"event": event, "handler": url})
            done["events_unbound"] += 1
    for event in EVENTS:
        if event.upper() not in have:
            client.call("event.bind", {"event": event, "handler": handler})
            done["events_bound"] += 1
    placements = client.call("placement.get").result or []
    public = settings.effective_public_url()
    for code, path, params in placement_specs():
        page = public + path
        done["placements_bound"] += _bind_placement(client, placements, code, page, path, params)
    return done


def make_setup_handler(
    client_for: Callable[[Engine], Bitrix24Client] | None = None,
) -> JobHandler:
    def run(ctx: JobContext) -> None:
        settings = get_settings()
        try:
            client = (client_for or (lambda e: app_client(settings, e)))(ctx.engine)
        except NotConfigured as exc:
            # Installed before the keys were configured: retried until they are.
            for job in ctx.jobs:
                ctx.fail(job, str(exc), retry=True)
            return
        try:
            done = setup(client, settings)
        except Bitrix24Error as exc:
            for job in ctx.jobs:
                ctx.fail(job, str(exc), retry=exc.transient)
            return
        finally:
            if client_for is None:
                client.close()
        ctx.log.info("bitrix24 application set up", extra=done)

    return JobHandler(SETUP_KIND, run)


# -- sandbox mode: install ClientHub on the built-in portal ------------------------------------
def sandbox_self_install(settings: Settings, engine: Engine, *, wait_seconds: float = 30) -> bool:
    """Ask the sandbox portal to add ClientHub as a local application; it then posts the install
    callback to ``/bitrix24/install`` exactly as a real portal does. Skipped when tokens are
    stored already. Runs after the HTTP server is up (the callback comes back to it)."""
    with session_scope(engine, read_only=True) as s:
        if b24_tokens.get_row(s, None) is not None:
            return False
    client_id, secret, _ = app_credentials(settings)
    body = {"client_id": client_id, "client_secret": secret, "install_url": install_url(settings)}
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            r = httpx.post(f"{sandbox_url(settings)}/_sandbox/apps/install", json=body, timeout=30)
            if r.status_code == 200 and r.json().get("status") == 200:
                log.info("installed ClientHub on the sandbox portal")
                return True
            error = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if time.monotonic() > deadline:
            log.warning("sandbox self-install failed: %s", error)
            return False
        time.sleep(0.5)


def start_sandbox_self_install(settings: Settings, engine: Engine) -> threading.Thread | None:
    """For `clienthub run` in sandbox mode: install in the background once the server answers."""
    if portal_mode(settings) != "sandbox":
        return None
    thread = threading.Thread(
        target=sandbox_self_install, args=(settings, engine), name="sandbox-install", daemon=True
    )
    thread.start()
    return thread


HANDLERS = [make_setup_handler()]
