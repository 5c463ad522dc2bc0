"""The admin web UI: Jinja2 pages with htmx, under ``/ui``; static files under ``/static``.

``install_ui(app)`` is the one call ``hub/http/app.py`` makes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool  # current_user reads the database
from starlette.exceptions import HTTPException

from hub.ui.i18n import N_, gettext, translate_message, use_language
from hub.ui.security import CsrfFailed, Forbidden, LoginRequired, current_user
from hub.ui.templating import WEB_DIR, is_htmx, render

TITLES = {
    400: N_("Неверный запрос"),
    404: N_("Не найдено"),
    405: N_("Так обратиться к странице нельзя"),
    409: N_("Конфликт"),
    422: N_("Неверные данные"),
}


def install_ui(app: FastAPI) -> None:
    from hub.ui import (
        appeals,
        audit,
        auth,
        channels,
        dashboard,
        directory,
        directory_files,
        queue,
        rules,
        sandbox,
        users,
    )

    # directory_files before directory: its /files page would match directory's /{section}.
    modules = (auth, dashboard, appeals, rules, directory_files, directory, queue, channels, audit)
    for module in (*modules, sandbox, users):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.add_api_route("/", _root, include_in_schema=False)
    app.add_api_route("/ui", _root, include_in_schema=False)
    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(CsrfFailed, _csrf_failed)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]


def _root() -> Response:
    return RedirectResponse("/ui/", status_code=303)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _login_required(request: Request, _exc: LoginRequired) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"detail": "login required: a session cookie or `Authorization: Bearer <token>` "
             "(create one with `clienthub users token LOGIN`)"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="clienthub"'},
        )  # fmt: skip
    target = "/ui/login?next=" + request.url.path
    if is_htmx(request):  # htmx would swap the login page into a fragment: reload instead
        return Response(status_code=401, headers={"HX-Redirect": target})
    if request.method != "GET":
        return Response("login required", status_code=401)
    return RedirectResponse(target, status_code=303)


def _forbidden(request: Request, exc: Forbidden) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": f"forbidden: needs {exc.permission}"}, status_code=403)
    current_user(request)
    return render(request, "pages/forbidden.html", status_code=403, permission=exc.permission)


def _csrf_failed(request: Request, _exc: CsrfFailed) -> Response:
    current_user(request)
    return render(request, "pages/forbidden.html", status_code=403, permission="csrf")


def _is_ui(request: Request) -> bool:
    return request.url.path == "/ui" or request.url.path.startswith("/ui/")


def _error_page(request: Request, status: int, details: list[str]) -> Response:
    """An error of a UI page as a page in the reader's language (the API keeps JSON)."""
    current_user(request)
    use_language(request.state.language)
    title = gettext(TITLES.get(status, N_("Ошибка")))
    detail = "; ".join(translate_message(d) for d in details if d)
    return render(request, "pages/error.html", status_code=status, title=title, detail=detail)


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, list):  # hub.http.params.invalid: FastAPI's own shape
        return [
            str(item.get("msg", "")) if isinstance(item, dict) else str(item) for item in detail
        ]
    return [str(detail)] if detail else []


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if not _is_ui(request) or exc.status_code < 400 or exc.status_code == 401:
        return await http_exception_handler(request, exc)
    return await run_in_threadpool(_error_page, request, exc.status_code, _messages(exc.detail))


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    if not _is_ui(request):
        return await request_validation_exception_handler(request, exc)
    fields = [str(error.get("loc", ["?"])[-1]) for error in exc.errors()]

    def page() -> Response:
        current_user(request)  # the reader's language, before the messages are made
        use_language(request.state.language)
        details = [gettext(N_("неверное значение поля «%(field)s»"), field=f) for f in fields]
        return _error_page(request, 422, details)

    return await run_in_threadpool(page)
