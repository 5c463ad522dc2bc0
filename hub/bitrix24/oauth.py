"""OAuth 2.0 for the server-side local application (docs: settings/oauth/index.md).

The access token lives 1 h, the refresh token 180 days, and every refresh returns a *new* refresh
token: two workers refreshing at once would each burn the other's token. So a refresh runs under
one lock per portal across all processes (a PostgreSQL advisory lock; on SQLite a lease row,
which keeps the write lock free during the HTTP call), and a worker that waited re-reads the
stored tokens before refreshing again. Tokens are refreshed shortly before expiry and on
``expired_token``, never on a timer ("the application may be blocked").
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from hub.bitrix24.errors import AuthError, PortalUnavailable
from hub.bitrix24.ratelimit import ensure_row
from hub.db import session_scope
from hub.models import RateBucket
from hub.settings import Settings
from hub.storage import b24_tokens
from hub.storage.b24_tokens import Tokens
from hub.timeutil import as_utc, utcnow


class InstallError(ValueError):
    """The install callback is malformed or not for this portal (answered with 4xx)."""


def parse_install(form: Mapping[str, Any], *, now: datetime | None = None) -> Tokens:
    """Tokens from the install callback: either ``auth[...]`` (``ONAPPINSTALL`` shape, as sent to
    the "initial installation path" of an API-only app) or ``AUTH_ID``/``REFRESH_ID``/``DOMAIN``
    (the shape sent to an app's UI page)."""
    now = now or utcnow()
    auth = form.get("auth")
    if isinstance(auth, Mapping):
        access, refresh = auth.get("access_token"), auth.get("refresh_token")
        domain = auth.get("domain")
        expires_in = auth.get("expires_in") or 3600
        endpoint = auth.get("client_endpoint")
        member, scope, app_token = (
            auth.get("member_id"),
            auth.get("scope"),
            auth.get("application_token"),
        )
    else:
        access, refresh = form.get("AUTH_ID"), form.get("REFRESH_ID")
        domain = form.get("DOMAIN")
        expires_in = form.get("AUTH_EXPIRES") or 3600
        endpoint = None
        member, scope, app_token = form.get("member_id"), None, form.get("APP_SID")
    if not (access and refresh and domain):
        raise InstallError("install callback lacks access_token, refresh_token or domain")
    domain = str(domain).strip().lower()
    endpoint = str(endpoint or f"https://{domain}/rest/")
    if httpx.URL(endpoint).host != domain.split(":")[0]:
        raise InstallError("client_endpoint does not belong to the installing portal")
    try:
        expires = now + timedelta(seconds=int(expires_in))
    except (TypeError, ValueError):
        raise InstallError("expires_in is not a number") from None
    return Tokens(
        domain=domain,
        access_token=str(access),
        refresh_token=str(refresh),
        expires_at=expires,
        client_endpoint=endpoint,
        member_id=str(member) if member else None,
        scope=str(scope) if scope else None,
        application_token=str(app_token) if app_token else None,
    )


@contextmanager
def refresh_lock(engine: Engine, domain: str, *, lease_seconds: float = 30.0) -> Iterator[None]:
    """One refresh at a time per portal, across processes."""
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(f"b24-refresh:{domain}".encode())
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    name = f"lock|b24-refresh|{domain}"
    while True:
        with session_scope(engine) as s:
            now = utcnow()
            row = ensure_row(s, name, now)
            if row.blocked_until is None or as_utc(row.blocked_until) <= now:
                row.blocked_until = now + timedelta(seconds=lease_seconds)
                break
        time.sleep(0.05)
    try:
        yield
    finally:
        with session_scope(engine) as s:
            row = s.get(RateBucket, name)
            if row is not None:
                row.blocked_until = None


class TokenManager:
    """Current tokens for one portal; refreshes them when needed."""

    def __init__(
        self,
        engine: Engine,
        *,
        domain: str,
        client_id: str,
        client_secret: str,
        oauth_url: str,
        settings: Settings | None = None,
        http: httpx.Client | None = None,
        margin: timedelta = timedelta(seconds=60),
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.domain = engine, domain
        self._client_id, self._client_secret, self._oauth_url = client_id, client_secret, oauth_url
        self._settings = settings
        self._http = http or httpx.Client(timeout=httpx.Timeout(20.0, connect=10.0))
        self._margin, self._now = margin, now
        self._cached: Tokens | None = None
        self.refreshes = 0  # refreshes this process performed (tests)

    def _load(self) -> Tokens:
        with session_scope(self.engine, read_only=True) as s:
            tokens = b24_tokens.load(s, self.domain, self._settings)
        if tokens is None:
            raise AuthError("oauth", "NO_AUTH_FOUND", "the application is not installed")
        return tokens

    def current(self) -> Tokens:
        tokens = self._cached or self._load()
        if tokens.expires_at - self._now() < self._margin:
            tokens = self.refresh(tokens.access_token)
        self._cached = tokens
        return tokens

    def refresh(self, seen_access_token: str | None) -> Tokens:
        """Refresh unless another worker already did since we saw ``seen_access_token``."""
        with refresh_lock(self.engine, self.domain):
            stored = self._load()
            fresh_enough = stored.expires_at - self._now() >= self._margin
            if stored.access_token != seen_access_token and fresh_enough:
                self._cached = stored
                return stored
            tokens = self._grant(stored)
            with session_scope(self.engine) as s:
                b24_tokens.save(s, tokens, self._settings)
            self.refreshes += 1
        self._cached = tokens
        return tokens

    def _grant(self, stored: Tokens) -> Tokens:
        params = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": stored.refresh_token,
        }
        try:
            resp = self._http.get(self._oauth_url, params=params)
        except httpx.TransportError as exc:
            raise PortalUnavailable("oauth.token", "", type(exc).__name__) from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code >= 400 or "access_token" not in body:
            code = str(body.get("error") or f"HTTP {resp.status_code}")
            # invalid_grant: the refresh token is dead; an admin must reinstall the app.
            raise AuthError("oauth.token", code, str(body.get("error_description") or ""))
        return Tokens(
            domain=stored.domain,
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=self._now() + timedelta(seconds=int(body.get("expires_in") or 3600)),
            client_endpoint=str(body.get("client_endpoint") or stored.client_endpoint),
            member_id=str(body.get("member_id") or stored.member_id or "") or None,
            scope=str(body.get("scope") or stored.scope or "") or None,
            application_token=stored.application_token,
        )


class OAuthAuth:
    """Calls go to ``client_endpoint + method`` with ``auth=<access token>`` in the body."""

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager
        self.portal = manager.domain

    def url(self, method: str) -> str:
        return self.manager.current().client_endpoint.rstrip("/") + "/" + method

    def params(self) -> dict[str, Any]:
        return {"auth": self.manager.current().access_token}

    def refresh(self, rejected: dict[str, Any]) -> bool:
        self.manager.refresh(rejected.get("auth"))
        return True

    def __repr__(self) -> str:
        return f"OAuthAuth(portal={self.portal!r})"
