"""Operator commands: appeals list/show, jobs list/retry, sources list/add/remove."""

from __future__ import annotations

import getpass
import json
from typing import Any

import typer
from sqlalchemy import select

from hub.db import get_engine, session_scope

appeals_app = typer.Typer(help="Stored appeals with their routing.", no_args_is_help=True)
jobs_app = typer.Typer(help="The job queue and its dead letters.", no_args_is_help=True)
sources_app = typer.Typer(help="Channel sources that may post to /hooks.", no_args_is_help=True)


def cli_actor() -> str:
    """Who made a change from the command line, for the audit log: the system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "cli"


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _exit_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@appeals_app.command("list")
def appeals_list(
    limit: int = typer.Option(20, min=1, max=1000),
    state: str | None = typer.Option(None, help="new, routed, filtered, delivered, answered"),
    channel: str | None = None,
    before_id: int | None = typer.Option(
        None, help="Keyset cursor: show appeals older than this id."
    ),
    as_json: bool = typer.Option(False, "--json", help="Full JSON with the routing trace."),
) -> None:
    """Newest appeals first, with where they went and why."""
    from hub.http.api import appeal_json
    from hub.storage import appeals as store

    with session_scope(get_engine(), read_only=True) as s:
        rows = store.list_page(
            s,
            flt=store.AppealFilter(channel=channel, state=state),
            limit=limit,
            before_id=before_id,
        )
    if as_json:
        _echo_json([appeal_json(a, full=True) for a in rows])
        return
    if not rows:
        typer.echo("no appeals")
        return
    for a in rows:
        who = a.assignee_name or "—"
        crm = f"{a.crm_entity} #{a.crm_entity_id}" if a.crm_entity_id else a.delivery_state
        typer.echo(
            f"#{a.id} {a.received_at:%Y-%m-%d %H:%M} {a.channel}/{a.source} {a.kind} "
            f"[{a.state}] topic={a.topic or '?'} region={a.region or '?'} → {who} · CRM: {crm}"
        )
        typer.echo(f"    {a.author_name or ''} {a.author_phone or ''} «{_short(a.text)}»")
        for step in a.trace:
            typer.echo(f"    · {step.get('message')}")


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@appeals_app.command("show")
def appeals_show(appeal_id: int) -> None:
    """One appeal with its raw event and full trace, as JSON."""
    from hub.http.api import appeal_json
    from hub.storage import appeals as store

    with session_scope(get_engine(), read_only=True) as s:
        appeal = store.get(s, appeal_id)
        if appeal is None:
            raise _exit_error(f"appeal {appeal_id} not found")
        _echo_json(appeal_json(appeal, full=True))


@jobs_app.command("list")
def jobs_list(
    state: str | None = typer.Option(None, help="queued, running, done, dead"),
    kind: str | None = None,
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Jobs, newest first; a summary by kind and state comes first."""
    from hub import queue
    from hub.models import Job

    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        q = q.where(Job.state == state)
    if kind:
        q = q.where(Job.kind == kind)
    with session_scope(get_engine(), read_only=True) as s:
        counts = queue.counts_by_state(s)
        jobs = s.execute(q).scalars().all()
    summary = ", ".join(f"{k}/{st}: {n}" for (k, st), n in sorted(counts.items())) or "empty"
    typer.echo(f"queue: {summary}")
    for j in jobs:
        err = f" — {_short(j.last_error, 120)}" if j.last_error else ""
        typer.echo(
            f"#{j.id} {j.kind} [{j.state}] attempts={j.attempts} run_at={j.run_at:%F %T}"
            f" key={j.key}{err}"
        )


@jobs_app.command("retry")
def jobs_retry(
    job_ids: list[int] = typer.Argument(None, help="Dead job ids; none with --all-dead."),
    kind: str | None = typer.Option(None, help="Only dead jobs of this kind."),
    all_dead: bool = typer.Option(False, "--all-dead", help="Retry every dead job."),
) -> None:
    """Put dead jobs back in the queue with a fresh retry horizon."""
    from hub import queue
    from hub.models import AuditEntry

    if not job_ids and not all_dead and not kind:
        raise _exit_error("name job ids, or use --all-dead / --kind")
    with session_scope(get_engine()) as s:
        n = queue.retry(s, job_ids=job_ids or None, kind=kind)
        s.add(
            AuditEntry(
                actor="cli",
                action="jobs.retry",
                object_type="job",
                object_id=",".join(map(str, job_ids or [])) or None,
                details={"kind": kind, "count": n},
            )
        )
    typer.echo(f"{n} dead job(s) queued again")
    if job_ids and n < len(job_ids):
        raise _exit_error("some ids were not dead jobs")


@sources_app.command("list")
def sources_list() -> None:
    from hub.storage import sources as store

    with session_scope(get_engine(), read_only=True) as s:
        rows = store.list_all(s)
    for r in rows:
        state = "on" if r.enabled else "off"
        secret = "secret set" if r.secrets_enc else "no secret"
        typer.echo(f"{r.channel}/{r.source} [{state}] {r.title} ({secret}) config={r.config}")
    if not rows:
        typer.echo("no sources")


@sources_app.command("add")
def sources_add(
    channel: str,
    source: str,
    title: str = "",
    config: str = typer.Option("{}", help="JSON object of non-secret settings."),
    secret: list[str] = typer.Option(None, help="NAME=VALUE, stored encrypted; repeatable."),
    disabled: bool = False,
) -> None:
    """Add or update a source (POST /hooks/CHANNEL/SOURCE is refused until it exists)."""
    from connectors import CONNECTORS
    from hub.storage import sources as store

    if channel not in CONNECTORS:
        raise _exit_error(f"unknown channel {channel!r}; known: {', '.join(sorted(CONNECTORS))}")
    try:
        cfg = json.loads(config)
    except json.JSONDecodeError as exc:
        raise _exit_error(f"--config is not JSON: {exc.msg}") from exc
    if not isinstance(cfg, dict):
        raise _exit_error("--config must be a JSON object")
    secrets: dict[str, str] = {}
    for item in secret or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise _exit_error(f"--secret must be NAME=VALUE, got {item!r}")
        secrets[name] = value
    with session_scope(get_engine()) as s:
        store.upsert(
            s,
            channel=channel,
            source=source,
            title=title,
            config=cfg,
            secrets=secrets if secret else None,
            enabled=not disabled,
            actor=cli_actor(),
        )
    typer.echo(f"source {channel}/{source} saved")


@sources_app.command("remove")
def sources_remove(channel: str, source: str) -> None:
    from hub.storage import sources as store

    with session_scope(get_engine()) as s:
        n = store.remove(s, channel=channel, source=source, actor=cli_actor())
    if not n:
        raise _exit_error(f"no source {channel}/{source}")
    typer.echo(f"source {channel}/{source} removed")
