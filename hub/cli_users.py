"""`clienthub users`: admin UI accounts from the command line (the first admin comes from here)."""

from __future__ import annotations

import typer

users_app = typer.Typer(
    help="Admin UI users: add, list, set a password, disable, link to Bitrix24.",
    no_args_is_help=True,
)
ROLES = ("admin", "editor", "reviewer", "operator")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _password(given: str | None) -> str:
    from hub.ui.users import password_problem

    password = given or typer.prompt("Пароль", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem:
        raise _fail(problem)
    return password


def _engine():  # type: ignore[no-untyped-def]
    from hub import migrations
    from hub.db import get_engine
    from hub.settings import get_settings

    migrations.upgrade(get_settings().database_url)
    return get_engine()


@users_app.command("add")
def add(
    login: str = typer.Argument(..., help="Login (case-insensitive)."),
    role: str = typer.Option("admin", help=f"One of: {', '.join(ROLES)}."),
    name: str = typer.Option("", help="Full name, shown in the UI and the audit log."),
    password: str = typer.Option(None, help="Asked for when not given (safer: not in history)."),
    language: str = typer.Option("ru", help="ru or en."),
) -> None:
    """Create a user; `clienthub users add admin` makes the first administrator."""
    from hub.db import session_scope
    from hub.storage import users as store
    from hub.storage.ui_queries import add_audit
    from hub.ui.security import hash_password

    if role not in ROLES:
        raise _fail(f"role must be one of {', '.join(ROLES)}")
    login = login.strip().lower()
    secret = _password(password)
    with session_scope(_engine()) as s:
        try:
            store.create(
                s, login=login, name=name, role=role, language=language,
                password_hash=hash_password(secret),
            )  # fmt: skip
        except store.UserExists:
            raise _fail(
                f"user {login} exists (change the password: clienthub users passwd)"
            ) from None
        add_audit(s, actor="cli", action="user.add", object_type="user", object_id=login,
                  details={"after": {"login": login, "role": role, "name": name}})  # fmt: skip
    typer.echo(f"user {login} ({role}) created")


@users_app.command("list")
def list_users() -> None:
    """Every user with role, state and last login."""
    from hub.db import session_scope
    from hub.storage import users as store

    with session_scope(_engine(), read_only=True) as s:
        rows = store.list_all(s)
    for u in rows:
        state = "enabled" if u.enabled else "disabled"
        last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
        b24 = f"\tbitrix24 user {u.bitrix_user_id}" if u.bitrix_user_id is not None else ""
        typer.echo(f"{u.login}\t{u.role}\t{state}\tlast login {last}\t{u.name}{b24}")


def _change(login: str, action: str, **values: object) -> None:
    from hub.db import session_scope
    from hub.storage import users as store
    from hub.storage.ui_queries import add_audit

    with session_scope(_engine()) as s:
        user = store.get_by_login(s, login.strip().lower())
        if user is None or user.id is None:
            raise _fail(f"no user {login}")
        store.update_user(s, user.id, **values)
        store.close_all_sessions(s, user.id)
        details = {k: v for k, v in values.items() if not k.startswith("password")}
        add_audit(
            s, actor="cli", action=action, object_type="user", object_id=user.login, details=details
        )


@users_app.command("passwd")
def passwd(login: str, password: str = typer.Option(None)) -> None:
    """Set a new password; the user's open sessions end."""
    from hub.timeutil import utcnow
    from hub.ui.security import hash_password

    secret = _password(password)
    _change(
        login, "user.password", password_hash=hash_password(secret), password_changed_at=utcnow()
    )
    typer.echo(f"password of {login} changed")


@users_app.command("disable")
def disable(
    login: str, enable: bool = typer.Option(False, "--enable", help="Enable again.")
) -> None:
    """Disable (or --enable) a user; a disabled user's sessions end at once."""
    _change(login, "user.enable" if enable else "user.disable", enabled=enable)
    typer.echo(f"{login} {'enabled' if enable else 'disabled'}")


@users_app.command("link")
def link(
    login: str,
    bitrix24_user: int | None = typer.Option(
        None, "--bitrix24-user", min=1, help="The Bitrix24 user id (the menu item shows it)."
    ),
    unlink: bool = typer.Option(False, "--unlink", help="Remove the link."),
) -> None:
    """Link a user to a Bitrix24 user: opening «ClientHub» in the portal's left menu then signs
    them in without a password. One ClientHub user per Bitrix24 user."""
    from hub.db import session_scope
    from hub.storage import users as store
    from hub.storage.ui_queries import add_audit

    if unlink == (bitrix24_user is not None):
        raise _fail("give either --bitrix24-user ID or --unlink")
    with session_scope(_engine()) as s:
        user = store.get_by_login(s, login.strip().lower())
        if user is None or user.id is None:
            raise _fail(f"no user {login}")
        before = user.bitrix_user_id
        try:
            store.link_bitrix_user(s, user.id, bitrix24_user)
        except store.BitrixUserTaken as taken:
            raise _fail(f"Bitrix24 user {bitrix24_user} is linked to {taken} already") from None
        add_audit(
            s,
            actor="cli",
            action="user.unlink" if unlink else "user.link",
            object_type="user",
            object_id=user.login,
            details={
                "before": {"bitrix_user_id": before},
                "after": {"bitrix_user_id": bitrix24_user},
            },
        )
        who = user.login
    if unlink:
        typer.echo(f"{who} is no longer linked to a Bitrix24 user")
    else:
        typer.echo(f"{who} linked to Bitrix24 user {bitrix24_user}")


@users_app.command("token")
def token(
    login: str,
    days: int = typer.Option(90, min=1, max=3650, help="Valid for this many days."),
) -> None:
    """Issue an API token for scripts (``Authorization: Bearer``): it acts as the user, with the
    user's role, and ends with the user's sessions (password change, disable)."""
    from datetime import timedelta

    from hub.db import session_scope
    from hub.storage import users as store
    from hub.storage.ui_queries import add_audit
    from hub.timeutil import utcnow
    from hub.ui.security import new_token

    value, digest = new_token()
    with session_scope(_engine()) as s:
        user = store.get_by_login(s, login.strip().lower())
        if user is None or not user.enabled:
            raise _fail(f"no enabled user {login}")
        expires = utcnow() + timedelta(days=days)
        store.open_session(
            s, user=user, token_hash=digest, csrf_token=new_token()[0], expires_at=expires,
            ip="api-token",
        )  # fmt: skip
        who = user.login
        add_audit(
            s, actor="cli", action="user.token", object_type="user", object_id=who,
            details={"expires_at": expires.isoformat()},
        )  # fmt: skip
    typer.echo(value)
    typer.echo(f"API token of {who} until {expires:%Y-%m-%d}; shown once.", err=True)
