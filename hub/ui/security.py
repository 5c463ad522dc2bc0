"""Who is asking and what they may do: passwords, sessions, CSRF and roles, checked server-side.

- Passwords: argon2id (argon2-cffi defaults), rehashed on login when the parameters change.
- Sessions: a random 256-bit token in an HttpOnly, SameSite=Lax cookie (Secure behind HTTPS);
  the database keeps only its SHA-256, so a leaked database opens no session.
- CSRF: every unsafe request carries the session's token in a form field or the
  ``X-CSRF-Token`` header (htmx sends it from ``<body hx-headers>``); compared in constant time.
  The login form, which has no session yet, uses a double-submit cookie.
- Roles: ``PERMISSIONS`` maps each action to the roles allowed; every route depends on
  :func:`require`, so a forgotten check is a missing dependency, visible in review.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from hub.db import session_scope
from hub.models import Role
from hub.storage import users as users_store
from hub.storage.users import SessionUser
from hub.ui.i18n import pick_language, use_language

SESSION_COOKIE = "clienthub_session"
LOGIN_CSRF_COOKIE = "clienthub_login_csrf"
LANGUAGE_COOKIE = "clienthub_lang"  # the language chosen last in this browser: the login page
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

_A, _E, _R, _O = Role.admin, Role.editor, Role.reviewer, Role.operator
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.read": frozenset({_A, _E, _R, _O}),
    "appeals.read": frozenset({_A, _R, _O}),
    "appeals.reroute": frozenset({_A, _O}),
    "appeals.blacklist": frozenset({_A, _E}),
    "rules.read": frozenset({_A, _E, _R}),
    "rules.write": frozenset({_A, _E}),
    "queue.read": frozenset({_A, _O}),
    "queue.retry": frozenset({_A, _O}),
    "channels.read": frozenset({_A, _O}),
    "channels.test": frozenset({_A, _O}),
    "audit.read": frozenset({_A, _R}),
    "users.manage": frozenset({_A}),
    "sandbox.read": frozenset({_A, _R, _O}),
    "sandbox.reply": frozenset({_A, _O}),
}

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A real hash of a random password: checking an unknown login costs what a known one costs,
# so response times do not tell which logins exist.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def new_token() -> tuple[str, str]:
    """(the cookie value, what the database stores)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def cookie_secure(request: Request) -> bool:
    public = request.app.state.settings.effective_public_url()
    return request.url.scheme == "https" or public.startswith("https://")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, htmx gets 401 and reloads."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this action."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(permission)


class CsrfFailed(Exception):
    """An unsafe request without the session's CSRF token."""


def current_user(request: Request) -> SessionUser | None:
    """The logged-in user or None; cached on the request (one lookup per request)."""
    if hasattr(request.state, "viewer"):
        return request.state.viewer  # type: ignore[no-any-return]
    viewer = None
    token = request.cookies.get(SESSION_COOKIE)
    bearer = bearer_token(request)
    if bearer and not token:  # API clients: a token from `clienthub users token`
        token = bearer
        request.state.bearer = True
    if token:
        with session_scope(request.app.state.engine, read_only=True) as s:
            viewer = users_store.find_session(s, token_hash(token))
    request.state.viewer = viewer
    request.state.language = pick_language(
        viewer.language if viewer else request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )
    return viewer


def can(viewer: SessionUser | None, permission: str) -> bool:
    return viewer is not None and viewer.role in PERMISSIONS[permission]


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _check_csrf(request: Request, viewer: SessionUser) -> None:
    # A browser never attaches an Authorization header on its own, so a bearer request cannot be
    # forged cross-site: only cookie sessions need the token.
    if request.method in ("GET", "HEAD", "OPTIONS") or getattr(request.state, "bearer", False):
        return
    given = request.headers.get(CSRF_HEADER)
    if not given:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette caches it for the endpoint's Form() params
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not same(given, viewer.csrf_token):
        raise CsrfFailed


def require(permission: str) -> Callable[[Request], Awaitable[SessionUser]]:
    """A dependency: the user, who must be logged in, hold ``permission`` and, for unsafe
    methods, present the CSRF token."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    async def dependency(request: Request) -> SessionUser:
        viewer = await run_in_threadpool(current_user, request)  # keep the event loop free
        # Set here, in the request's own context: the endpoint (and the threads it runs in)
        # inherits it, so messages made outside templates come in the user's language.
        use_language(request.state.language)
        if viewer is None:
            raise LoginRequired
        if viewer.role not in PERMISSIONS[permission]:
            raise Forbidden(permission)
        await _check_csrf(request, viewer)
        return viewer

    return dependency
