"""`clienthub users …`: the first admin comes from the command line."""

from __future__ import annotations

import typer
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from hub.cli_users import users_app
from hub.db import session_scope
from hub.storage import users as users_store
from hub.ui.security import verify_password

app = typer.Typer()
app.add_typer(users_app, name="users")


def test_add_list_passwd_disable(ui_sqlite_engine: Engine) -> None:
    run = CliRunner().invoke
    r = run(app, ["users", "add", "Anna", "--password", "first-pass-1", "--name", "Анна"])
    assert r.exit_code == 0, r.output
    assert run(app, ["users", "add", "anna", "--password", "first-pass-1"]).exit_code == 2
    assert run(app, ["users", "add", "bob", "--password", "short"]).exit_code == 2
    assert (
        run(app, ["users", "add", "bob", "--role", "boss", "--password", "x" * 12]).exit_code == 2
    )
    listing = run(app, ["users", "list"]).output
    assert "anna\tadmin\tenabled" in listing
    assert run(app, ["users", "passwd", "anna", "--password", "second-pass-2"]).exit_code == 0
    assert run(app, ["users", "disable", "anna"]).exit_code == 0
    with session_scope(ui_sqlite_engine, read_only=True) as s:
        user = users_store.get_by_login(s, "anna")
    assert user is not None and not user.enabled and user.name == "Анна"
    assert verify_password(user.password_hash, "second-pass-2")
