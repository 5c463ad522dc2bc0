"""Security headers on every response, as one pure ASGI middleware (no per-request task or body
copy, so the webhook path pays a few header appends and nothing else).

- ``Content-Security-Policy``: scripts only from this origin (no inline scripts, no ``eval``);
  inline *styles* are allowed because the templates use ``style=`` attributes and htmx injects
  its indicator style. Nothing may frame ClientHub (``frame-ancestors 'none'``), except the pages
  Bitrix24 shows in its iframe (``/bitrix24/…``: the application's install page, the deal-card
  placement, the Open Lines connector settings): those may be framed by the portal only, and may
  load the portal's JS SDK from ``api.bitrix24.com``.
- ``X-Frame-Options`` for old browsers, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (appeal URLs carry ids), ``Cross-Origin-Opener-Policy``,
  a ``Permissions-Policy`` that switches off camera, microphone and geolocation, and
  ``Cache-Control: no-store`` on the admin UI and API (pages with personal data stay out of
  shared caches).
- ``Strict-Transport-Security`` when ClientHub is served over HTTPS.

A header a route set itself wins (file downloads set their own ``Content-Disposition`` rules and
may tighten the policy).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.settings import Settings

EMBEDDED_PREFIX = "/bitrix24/"
BX24_SDK = "https://api.bitrix24.com"
# Bitrix24 cloud portals live under these domains; used only while no portal is configured
# (the install page must be shown in the portal that installs the application).
CLOUD_PORTALS = (
    "https://*.bitrix24.ru",
    "https://*.bitrix24.com",
    "https://*.bitrix24.by",
    "https://*.bitrix24.kz",
    "https://*.bitrix24.de",
    "https://*.bitrix24.eu",
)
NO_STORE_PREFIXES = ("/ui", "/api/")


def _csp(*, frame_ancestors: str, script_src: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def portal_origins(settings: Settings) -> list[str]:
    """The Bitrix24 portal(s) that may frame the embedded pages, from the configuration."""
    origins: list[str] = []
    if settings.b24_portal_domain:
        origins.append(f"https://{settings.b24_portal_domain.strip().strip('/')}")
    webhook = settings.b24_webhook_url.get_secret_value()
    if webhook:
        parts = urlsplit(webhook)
        origins.append(f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}")
    if settings.sandbox_url:
        parts = urlsplit(settings.sandbox_url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(origins)) or list(CLOUD_PORTALS)


class SecurityHeaders:
    """ASGI middleware; see the module docstring for the headers and why."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        https = settings.effective_public_url().startswith("https://")
        common = [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
        ]
        if https:
            common.append(("strict-transport-security", "max-age=31536000"))
        ancestors = " ".join(["'self'", *portal_origins(settings)])
        self.default = [
            *common,
            ("content-security-policy", _csp(frame_ancestors="'none'", script_src="'self'")),
            ("x-frame-options", "DENY"),
        ]
        self.embedded = [
            *common,
            (
                "content-security-policy",
                _csp(frame_ancestors=ancestors, script_src=f"'self' {BX24_SDK}"),
            ),
        ]
        self.https = https

    def headers_for(self, path: str, scheme: str) -> Iterable[tuple[str, str]]:
        extra = list(self.embedded if path.startswith(EMBEDDED_PREFIX) else self.default)
        if path.startswith(NO_STORE_PREFIXES) and not path.startswith("/ui/static"):
            extra.append(("cache-control", "no-store"))
        if scheme == "https" and not self.https:
            extra.append(("strict-transport-security", "max-age=31536000"))
        return extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope.get("path", ""), scope.get("scheme", "http"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI, settings: Settings) -> None:
    """Mount the middleware (``create_app`` calls this once)."""
    app.add_middleware(SecurityHeaders, settings=settings)
