"""Jinja2 pages: one environment, the request's language and user in every context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from hub.ui import i18n
from hub.ui.security import CSRF_FIELD, PERMISSIONS, can, current_user

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
templates.env.autoescape = True
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

STATE_CLASSES = {
    "dead": "bad",
    "failed": "bad",
    "filtered": "muted",
    "queued": "warn",
    "pending": "warn",
    "running": "warn",
    "routed": "warn",
    "done": "ok",
    "delivered": "ok",
    "answered": "ok",
    "published": "ok",
    "draft": "warn",
}


def _pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


templates.env.filters["pretty_json"] = _pretty_json
# A message formatted in Russian (a field error, a checker problem) in the reader's language.
templates.env.filters["tmsg"] = lambda message: i18n.translate_message(str(message))
templates.env.globals["STATE_CLASSES"] = STATE_CLASSES
templates.env.globals["PERMISSIONS"] = PERMISSIONS
templates.env.globals["LANGUAGES"] = i18n.LANGUAGES


def context(request: Request, **values: Any) -> dict[str, Any]:
    viewer = current_user(request)
    language: str = getattr(request.state, "language", i18n.DEFAULT_LANGUAGE)
    tr = i18n.translations(language)

    def csrf_input() -> Markup:
        token = viewer.csrf_token if viewer else ""
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)

    def gettext(message: str, **values: Any) -> str:
        """``_("Версия %(n)s опубликована", n=5)``: translated, then filled in."""
        text = tr.gettext(message)
        return text % values if values else text

    return {
        "request": request,
        "viewer": viewer,
        "lang": language,
        "_": gettext,
        "gettext": gettext,
        "ngettext": tr.ngettext,
        "can": lambda permission: can(viewer, permission),
        "csrf_input": csrf_input,
        "dt": lambda v, p="d MMM y, HH:mm": i18n.fmt_datetime(v, language, p),
        "num": lambda v: i18n.fmt_number(v, language),
        "dur": lambda v: i18n.fmt_duration(v, language),
        **values,
    }


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, context(request, **values), status_code=status_code
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
