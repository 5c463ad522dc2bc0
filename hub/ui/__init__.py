"""The admin web UI: Jinja2 pages with htmx, under ``/ui``; static files under ``/static``.

``install_ui(app)`` is the one call ``hub/http/app.py`` makes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from hub.ui.security import CsrfFailed, Forbidden, LoginRequired, current_user
from hub.ui.templating import WEB_DIR, is_htmx, render


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
