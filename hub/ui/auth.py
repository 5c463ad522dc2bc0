"""Log in, log out, the language switch, and sign-in from the Bitrix24 portal. Failed logins are
counted per login and per address."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.db import session_scope
from hub.storage import users as users_store
from hub.storage.ui_queries import add_audit
from hub.storage.users import SessionUser
from hub.timeutil import utcnow
from hub.ui import security
from hub.ui.i18n import LANGUAGES, translations
from hub.ui.security import (
    DUMMY_HASH,
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    client_ip,
    cookie_secure,
    current_user,
    new_token,
)
from hub.ui.templating import render

router = APIRouter(prefix="/ui")

WINDOW = timedelta(minutes=15)
MAX_PER_LOGIN = 5  # then this login waits out the window
MAX_PER_IP = 20


def _safe_next(value: str | None) -> str:
    """Only local paths: an open redirect after login would be a phishing aid."""
    if not value or not value.startswith("/ui") or urlsplit(value).netloc:
        return "/ui/"
    return value


def _login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "pages/login.html",
        status_code=status,
        error=error,
        login_csrf=token,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
        path="/ui",
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    current_user(request)
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    login: str = Form(...),
    password: str = Form(...),
    csrf_token: str = Form(""),
    next: str = Form("/ui/"),
) -> Response:
    current_user(request)
    _ = translations(request.state.language).gettext
    if not security.same(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(request, _("Форма устарела: откройте страницу входа заново."), 400)
    login = login.strip().lower()
    ip = client_ip(request)
    language: str | None = None
    engine = request.app.state.engine
    with session_scope(engine) as s:
        by_login, by_ip = users_store.failures_since(s, login=login, ip=ip, since=utcnow() - WINDOW)
        if by_login >= MAX_PER_LOGIN or by_ip >= MAX_PER_IP:
            return _login_page(
                request, _("Слишком много неудачных попыток. Попробуйте через 15 минут."), 429
            )
        user = users_store.get_by_login(s, login)
        ok = security.verify_password(user.password_hash if user else DUMMY_HASH, password)
        if user is None or not ok or not user.enabled:
            users_store.record_failure(s, login=login, ip=ip)
            failed = True
        else:
            failed = False
            if security.needs_rehash(user.password_hash):
                user.password_hash = security.hash_password(password)
            token, token_hash = new_token()
            users_store.open_session(
                s,
                user=user,
                token_hash=token_hash,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=utcnow() + SESSION_LIFETIME,
                ip=ip,
            )
            users_store.clear_failures(s, login=login)
            language = user.language
            add_audit(s, actor=login, action="user.login", object_type="user", object_id=login)
    if failed:
        return _login_page(request, _("Неверный логин или пароль."), 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui")
    if language in LANGUAGES:
        _set_language_cookie(request, response, language)
    return response


def _set_language_cookie(request: Request, response: Response, language: str) -> None:
    """Remembered by the browser, so that the login form after a logout speaks it too."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


@router.get("/sso/{ticket}")
def sso_login(request: Request, ticket: str) -> Response:
    """Exchange a one-time ticket from the Bitrix24 menu item (hub/bitrix24/sso.py) for a fresh
    session. A top-level page, so the cookie is first-party. The ticket is deleted and the
    session created in one transaction; a used, expired or unknown ticket gets a page saying
    to open ClientHub from Bitrix24 again."""
    current_user(request)  # the language of the error page
    ip = client_ip(request)
    previous = request.cookies.get(SESSION_COOKIE)
    token = None
    with session_scope(request.app.state.engine) as s:
        user = None
        if len(ticket) <= 128:
            user = users_store.redeem_ticket(s, security.token_hash(ticket))
        if user is not None:
            if previous:  # this browser's earlier session is replaced, not left behind
                users_store.close_session(s, security.token_hash(previous))
            token, token_hash = new_token()
            users_store.open_session(
                s,
                user=user,
                token_hash=token_hash,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=utcnow() + SESSION_LIFETIME,
                ip=ip,
            )
            add_audit(
                s, actor=user.login, action="user.sso", object_type="user", object_id=user.login,
                details={"bitrix24_user_id": user.bitrix_user_id, "ip": ip},
            )  # fmt: skip
    if token is None:
        return render(request, "pages/sso_failed.html", status_code=403)
    response = RedirectResponse("/ui/", status_code=303)
    _set_session_cookie(request, response, token)
    return response


@router.post("/logout")
async def logout(
    request: Request, viewer: SessionUser = Depends(security.require("dashboard.read"))
) -> Response:
    def close() -> None:
        with session_scope(request.app.state.engine) as s:
            users_store.close_session(s, viewer.token_hash)

    await run_in_threadpool(close)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def set_language(
    request: Request,
    language: str = Form(...),
    viewer: SessionUser = Depends(security.require("dashboard.read")),
) -> Response:
    if language in LANGUAGES:

        def save() -> None:
            with session_scope(request.app.state.engine) as s:
                users_store.update_user(s, viewer.user_id, language=language)

        await run_in_threadpool(save)
    back = request.headers.get("referer") or "/ui/"
    response = RedirectResponse(_safe_next(urlsplit(back).path or "/ui/"), status_code=303)
    if language in LANGUAGES:
        _set_language_cookie(request, response, language)
    return response
