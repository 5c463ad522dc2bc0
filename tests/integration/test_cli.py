"""The `clienthub` command on a real database."""

from __future__ import annotations

import httpx
from sqlalchemy import update
from typer.testing import CliRunner

from hub import migrations
from hub.cli import app
from hub.db import session_scope
from hub.models import Job, JobState
from tests.helpers import drain

runner = CliRunner()


def test_db_upgrade_is_idempotent(env):
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"database at {migrations.head_revision()}" in result.output


def test_appeals_list_shows_the_trace(live_server, engine):
    httpx.post(
        f"{live_server.url}/hooks/form/site",
        data={"name": "Иван", "phone": "89161234567", "message": "Здравствуйте"},
    )
    drain(engine)
    result = runner.invoke(app, ["appeals", "list"])
    assert result.exit_code == 0, result.output
    assert "form/site form" in result.output
    assert "Иван 89161234567 «Здравствуйте»" in result.output
    assert "·" in result.output  # trace lines
    shown = runner.invoke(app, ["appeals", "show", "1"])
    assert '"text": "Здравствуйте"' in shown.output
    assert runner.invoke(app, ["appeals", "show", "99"]).exit_code == 2


def test_jobs_list_and_retry_dead(live_server, engine):
    httpx.post(f"{live_server.url}/hooks/form/site", data={"message": "Здравствуйте"})
    with session_scope(engine) as s:
        s.execute(update(Job).values(state=JobState.dead, last_error="boom"))
    listed = runner.invoke(app, ["jobs", "list", "--state", "dead"])
    assert "parse.event [dead]" in listed.output
    assert "boom" in listed.output
    retried = runner.invoke(app, ["jobs", "retry", "--all-dead"])
    assert retried.exit_code == 0
    assert "1 dead job(s) queued again" in retried.output
    drain(engine)
    assert "parse.event/done: 1" in runner.invoke(app, ["jobs", "list"]).output


def test_usage_errors_exit_with_2_and_a_reason(env):
    r = runner.invoke(app, ["jobs", "retry"])
    assert r.exit_code == 2
    assert "name job ids" in r.output
    r = runner.invoke(app, ["sources", "add", "fax", "x"])
    assert r.exit_code == 2
    assert "unknown channel 'fax'" in r.output
    r = runner.invoke(app, ["sources", "add", "form", "x", "--config", "{nope"])
    assert r.exit_code == 2
    assert "not JSON" in r.output
    r = runner.invoke(app, ["sources", "add", "form", "x", "--secret", "novalue"])
    assert r.exit_code == 2


def test_sources_add_list_remove(env):
    assert (
        runner.invoke(app, ["sources", "add", "form", "landing", "--secret", "token=abc"]).exit_code
        == 0
    )
    out = runner.invoke(app, ["sources", "list"]).output
    assert "form/landing [on]" in out
    assert "secret set" in out
    assert "abc" not in out
    assert runner.invoke(app, ["sources", "remove", "form", "landing"]).exit_code == 0
    assert runner.invoke(app, ["sources", "remove", "form", "landing"]).exit_code == 2


def test_source_changes_from_the_cli_are_audited_with_secrets_masked(env, engine):
    from sqlalchemy import select

    from hub.models import AuditEntry
    from hub.ui.audit import change_lines

    token, new_token = "tok-0123456789-secret-A", "tok-0123456789-secret-B"
    args = ["sources", "add", "form", "landing", "--title", "Лендинг"]
    assert runner.invoke(app, [*args, "--secret", f"token={token}"]).exit_code == 0
    assert runner.invoke(app, [*args, "--secret", f"token={new_token}"]).exit_code == 0
    assert runner.invoke(app, [*args]).exit_code == 0  # nothing changed: nothing audited
    assert runner.invoke(app, ["sources", "remove", "form", "landing"]).exit_code == 0
    with session_scope(engine, read_only=True) as s:
        entries = list(s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("source.add", "channel_source", "form/landing"),
        ("source.change", "channel_source", "form/landing"),
        ("source.remove", "channel_source", "form/landing"),
    ]
    assert all(e.actor.startswith("cli") for e in entries)
    added, changed, removed = entries
    assert added.details["before"] is None
    assert added.details["after"]["secrets"] == {"token": "tok-…et-A"}
    assert added.details["after"]["title"] == "Лендинг"
    assert changed.details["secrets_changed"] == ["token"]
    assert removed.details["after"] is None and removed.details["before"]["title"] == "Лендинг"
    every = " ".join(str(e.details) + "\n".join(change_lines(e)) for e in entries)
    assert token not in every and new_token not in every and "0123456789" not in every
