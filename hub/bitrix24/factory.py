"""Build the Bitrix24 client from settings: an inbound webhook, the installed local application,
or the sandbox portal when neither is configured."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from hub.bitrix24.client import Auth, Bitrix24Client, WebhookAuth
from hub.bitrix24.oauth import OAuthAuth, TokenManager
from hub.bitrix24.ratelimit import DbRateLimiter
from hub.db import session_scope
from hub.settings import Settings
from hub.storage import b24_tokens


class NotConfigured(RuntimeError):
    """No portal: set CLIENTHUB_B24_WEBHOOK_URL, install the application, or enable the sandbox."""


SANDBOX_MOUNT = "/sandbox"
# What an inbound webhook (CLIENTHUB_B24_WEBHOOK_URL) is called for, so what it must be given:
# crm: contacts, deals, leads, timeline comments (hub/bitrix24/delivery.py, lookup.py) and the
# escalation's deal updates; im: overdue-reply notifications (im.notify.system.add,
# hub/escalation_steps.py); user: `clienthub b24 check` asks user.current. Open Lines, telephony
# and placements run on the local application's tokens (app_setup.SCOPES).
WEBHOOK_SCOPES = ("crm", "im", "user")


def sandbox_url(settings: Settings) -> str:
    """Where the sandbox portal answers: explicit, or the one `clienthub run` mounts."""
    if settings.sandbox_url:
        return settings.sandbox_url.rstrip("/")
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.port}{SANDBOX_MOUNT}"


def sandbox_webhook_url(settings: Settings) -> str:
    return f"{sandbox_url(settings)}/rest/1/{settings.sandbox_webhook_code}/"


def portal_mode(settings: Settings) -> str:
    if settings.b24_webhook_url.get_secret_value():
        return "webhook"
    if settings.b24_client_id:
        return "app"
    return "sandbox" if settings.sandbox_enabled else "none"


def auth_from_settings(settings: Settings, engine: Engine) -> Auth:
    mode = portal_mode(settings)
    if mode == "webhook":
        return WebhookAuth(settings.b24_webhook_url.get_secret_value())
    if mode == "app":
        with session_scope(engine, read_only=True) as s:
            row = b24_tokens.get_row(s, settings.b24_portal_domain or None)
        if row is None:
            raise NotConfigured("the Bitrix24 application is not installed yet")
        manager = TokenManager(
            engine,
            domain=row.domain,
            client_id=settings.b24_client_id,
            client_secret=settings.b24_client_secret.get_secret_value(),
            oauth_url=settings.b24_oauth_url,
            settings=settings,
        )
        return OAuthAuth(manager)
    if mode == "sandbox":
        return WebhookAuth(sandbox_webhook_url(settings))
    raise NotConfigured(NotConfigured.__doc__ or "")


def client_from_settings(
    settings: Settings, engine: Engine, *, transport: httpx.BaseTransport | None = None
) -> Bitrix24Client:
    auth = auth_from_settings(settings, engine)
    limiter = DbRateLimiter(
        engine,
        f"b24:{auth.portal}",
        burst=settings.b24_rate_burst,
        rate=settings.b24_rate_per_second,
    )
    return Bitrix24Client(
        auth, timeout=settings.b24_timeout_seconds, limiter=limiter, transport=transport
    )
