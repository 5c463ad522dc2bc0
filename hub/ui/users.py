"""Users (admins only): add, change role, disable, set a password, link a Bitrix24 user for
sign-in from the portal. Audited; the last enabled admin cannot be demoted or disabled, so the
UI never locks everyone out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import URL

from hub.db import session_scope
from hub.http.params import IdPath, invalid
from hub.models import Role
from hub.storage import users as users_store
from hub.storage.ui_queries import add_audit
from hub.storage.users import SessionUser
from hub.timeutil import utcnow
from hub.ui.i18n import N_, gettext
from hub.ui.security import hash_password, require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/users")
MIN_PASSWORD = 10
SHORT_PASSWORD = N_("пароль короче %(n)s символов")
# What the form said wrong, by code: the redirect carries the code (and values), the page shows
# the message in the reader's language.
ERRORS = {
    "password": SHORT_PASSWORD,
    "role": N_("нет такой роли"),
    "login": N_("не указан логин"),
    "exists": N_("такой логин уже есть"),
    "last-admin": N_("последнего администратора нельзя лишить роли или отключить"),
    "bitrix-id": N_("id пользователя Битрикс24 — целое положительное число"),
    "bitrix-taken": N_("пользователь Битрикс24 %(n)s уже связан с %(who)s"),
}


def password_problem(password: str, language: str = "ru") -> str | None:
    """Why a password is refused, or None; Russian unless asked (CLI and first start)."""
    if len(password) < MIN_PASSWORD:
        return gettext(SHORT_PASSWORD, language, n=MIN_PASSWORD)
    return None


def _refused(code: str, **values: object) -> RedirectResponse:
    url = URL("/ui/users").include_query_params(error=code, **values)
    return RedirectResponse(str(url), status_code=303)


def error_message(code: str | None, values: dict[str, str]) -> str | None:
    """The message of an error code, translated; an unknown code shows nothing."""
    if not code or code not in ERRORS:
        return None
    n = MIN_PASSWORD if code == "password" else values.get("n", "")
    return gettext(ERRORS[code], n=n, who=values.get("who", ""))


@router.get("")
def users_page(
    request: Request, viewer: SessionUser = Depends(require("users.manage"))
) -> Response:
    with session_scope(request.app.state.engine, read_only=True) as s:
        users = users_store.list_all(s)
    return render(
        request, "pages/users.html", nav="users", users=users, roles=[r.value for r in Role],
        error=error_message(request.query_params.get("error"), dict(request.query_params)),
        notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.post("")
def add_user(
    request: Request,
    login: str = Form(...),
    name: str = Form(""),
    role: str = Form(...),
    password: str = Form(...),
    viewer: SessionUser = Depends(require("users.manage")),
) -> Response:
    login = login.strip().lower()
    if password_problem(password):
        return _refused("password")
    if role not in Role.__members__:
        return _refused("role")
    if not login:
        return _refused("login")
    with session_scope(request.app.state.engine) as s:
        try:
            users_store.create(
                s, login=login, name=name.strip(), role=role, password_hash=hash_password(password)
            )
        except users_store.UserExists:
            return _refused("exists")
        add_audit(
            s, actor=viewer.login, action="user.add", object_type="user", object_id=login,
            details={"after": {"login": login, "name": name.strip(), "role": role}},
        )  # fmt: skip
    return RedirectResponse(f"/ui/users?notice=added:{login}", status_code=303)


def _enabled_admins(s) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for u in users_store.list_all(s) if u.role == Role.admin and u.enabled)


@router.post("/{user_id}")
def change_user(
    request: Request,
    user_id: IdPath,
    role: str = Form(...),
    enabled: bool = Form(False),
    password: str = Form(""),
    bitrix_user_id: str = Form(""),
    bitrix_link: bool = Form(False),  # set by the page's form: FastAPI reads "" as absent
    viewer: SessionUser = Depends(require("users.manage")),
) -> Response:
    if role not in Role.__members__:
        no_role = ERRORS["role"]
        raise invalid("role", gettext(no_role), where="body")
    link = bitrix_user_id.strip()
    if link and not (link.isdigit() and 0 < int(link) < 2**31):
        return _refused("bitrix-id")
    new_link = int(link) if link else None
    with session_scope(request.app.state.engine) as s:
        user = users_store.get(s, user_id)
        if user is None:
            raise HTTPException(404, gettext(N_("нет такого пользователя")))
        before = {"role": user.role, "enabled": user.enabled, "bitrix_user_id": user.bitrix_user_id}
        after: dict[str, object] = {"role": role, "enabled": enabled}
        losing_admin = (
            user.role == Role.admin and user.enabled and (role != Role.admin or not enabled)
        )
        if losing_admin and _enabled_admins(s) <= 1:
            return _refused("last-admin")
        values: dict[str, object] = {"role": role, "enabled": enabled}
        if password:
            if password_problem(password):
                return _refused("password")
            values.update(password_hash=hash_password(password), password_changed_at=utcnow())
        # Without bitrix_link (a script, an older form) the link stays; an empty field unlinks.
        if bitrix_link and new_link != user.bitrix_user_id:
            try:
                users_store.link_bitrix_user(s, user_id, new_link)
            except users_store.BitrixUserTaken as taken:
                return _refused("bitrix-taken", n=link, who=str(taken))
            after["bitrix_user_id"] = new_link
        else:
            before.pop("bitrix_user_id")
        users_store.update_user(s, user_id, **values)
        if password or not enabled or role != before["role"]:
            users_store.close_all_sessions(s, user_id)  # the change takes effect at once
        add_audit(
            s, actor=viewer.login, action="user.change", object_type="user", object_id=user.login,
            details={"before": before, "after": after, "password_changed": bool(password)},
        )  # fmt: skip
    return RedirectResponse(f"/ui/users?notice=saved:{user.login}", status_code=303)
