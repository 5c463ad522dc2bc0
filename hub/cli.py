"""`clienthub`: run, web, worker, db, appeals, jobs, sources."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from hub.cli_bitrix24 import bitrix24_app
from hub.cli_channels import channels_app
from hub.cli_demo import demo_app
from hub.cli_ops import appeals_app, jobs_app, sources_app
from hub.cli_rules import route_command, rules_app
from hub.cli_sandbox import b24_app, sandbox_command
from hub.cli_telephony import blacklist_app, calls_command
from hub.cli_users import users_app
from hub.settings import get_settings

if TYPE_CHECKING:
    import uvicorn
    from sqlalchemy.engine import Engine

    from hub.bootstrap import FirstAdmin
    from hub.settings import Settings

app = typer.Typer(
    help="ClientHub: every customer appeal stored, routed and delivered into Bitrix24.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(appeals_app, name="appeals")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sources_app, name="sources")
app.add_typer(channels_app, name="channels")
app.add_typer(rules_app, name="rules")
app.command("route", help="Route one appeal (JSON on stdin) and print the decision.")(route_command)
app.command("sandbox", help="Serve the sandbox Bitrix24 portal on its own.")(sandbox_command)
app.add_typer(b24_app, name="b24")
app.add_typer(bitrix24_app, name="bitrix24")
app.add_typer(users_app, name="users")
app.add_typer(demo_app, name="demo")
app.add_typer(blacklist_app, name="blacklist")
app.command("calls", help="Recent hotline calls and their delivery.")(calls_command)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply the Alembic migrations (safe to run repeatedly)."""
    from hub import migrations

    settings = get_settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {migrations.head_revision() if revision == 'head' else revision}")


def _override(host: str | None, port: int | None) -> None:
    """Command-line host/port win over the environment, for every part that builds URLs from
    settings (the sandbox portal's address, links back to appeals)."""
    if host:
        os.environ["CLIENTHUB_HOST"] = host
    if port:
        os.environ["CLIENTHUB_PORT"] = str(port)
    get_settings.cache_clear()


def _prepare() -> Any:
    """Shared start-up for every long-running command: logs, schema, default sources."""
    from hub import migrations
    from hub.bootstrap import ensure_defaults
    from hub.db import get_engine
    from hub.logging import setup_logging

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_json)
    migrations.upgrade(settings.database_url)
    engine = get_engine()
    ensure_defaults(engine, settings, say=lambda line: typer.echo(line, err=True))
    return engine


def _first_admin(engine: Engine, settings: Settings) -> FirstAdmin:
    """The first admin of a fresh install (hub/bootstrap.py); an unusable configured password
    stops the start with its reason instead of a traceback."""
    from hub.bootstrap import FirstAdminError, ensure_first_admin

    try:
        return ensure_first_admin(engine, settings)
    except FirstAdminError as exc:
        raise fail(str(exc)) from None


def _credentials(first: FirstAdmin, cli: str) -> list[str]:
    """What the banner says about logging in. A stored password cannot be shown (only its hash
    is kept), so later starts say how to create or reset users instead."""
    from hub.bootstrap import FIRST_ADMIN_LOGIN as admin

    label = "  вход / login:       "
    pad = " " * len(label)
    change = f"сменить / change: {cli} users passwd {admin}"
    if first.created and first.password:
        return [
            f"{label}{admin}   пароль / password: {first.password}",
            f"{pad}пароль показан только сейчас / shown only now; {change}",
        ]
    if first.created:
        return [f"{label}{admin}, пароль из CLIENTHUB_FIRST_ADMIN_PASSWORD; {change}"]
    if first.raced:
        return [f"{label}{admin} создал другой процесс (пароль в его выводе); {change}"]
    if first.users:
        return [
            f"{label}пользователи уже есть / users exist: {cli} users list",
            f"{pad}новый / new: {cli} users add ЛОГИН --role admin; "
            f"забыт пароль / reset: {cli} users passwd ЛОГИН",
        ]
    return [
        f"{label}пользователей нет (CLIENTHUB_FIRST_ADMIN=off); "
        f"создайте / create: {cli} users add {admin}"
    ]


def banner(
    settings: Settings, host: str, port: int, first: FirstAdmin, cli: str | None = None
) -> str:
    """The start-up banner on stderr: where everything is, and what to do next, with commands
    spelled as they work in the user's shell (``cli``, default: hub/cli_hint.py)."""
    from hub.bitrix24.factory import SANDBOX_MOUNT, portal_mode, sandbox_url
    from hub.cli_hint import cli_command

    cli = cli or cli_command()
    shown = host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    base = settings.public_url.rstrip("/") or f"http://{shown}:{port}"
    mode = portal_mode(settings)
    if mode == "sandbox":
        where = sandbox_url(settings) if settings.sandbox_url else f"{base}{SANDBOX_MOUNT}"
        portal = f"песочница / sandbox {where}, в интерфейсе {base}/ui/sandbox"
    elif mode == "none":
        portal = "не подключён / not connected: CLIENTHUB_B24_WEBHOOK_URL, docs/bitrix24_app.md"
    else:
        portal = f"портал / portal ({mode}): {cli} bitrix24 status"
    return "\n".join(
        [
            f"ClientHub запущен / is running: {base}",
            f"  интерфейс / UI:     {base}/ui/",
            *_credentials(first, cli),
            f"  Битрикс24:          {portal}",
            f"  вебхуки / webhooks: POST {base}/hooks/{{channel}}/{{source}}",
            f"  API:                {base}/api/appeals   ({cli} appeals list)",
            f"  здоровье / health:  {base}/readyz, {base}/metrics",
            f"  база / database:    {_safe_url(settings.database_url)}",
            f"Дальше / next: во втором терминале / in a second terminal: {cli} demo",
        ]
    )


def make_server(
    app_obj: Any, host: str, port: int, on_ready: Callable[[], None] | None = None
) -> uvicorn.Server:
    """A uvicorn server that calls ``on_ready`` once its socket listens, so that the banner's
    "is running" is true when printed (a port in use stops the start before it)."""
    import uvicorn

    class ReadyServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and on_ready is not None:
                on_ready()

    config = uvicorn.Config(app_obj, host=host, port=port, log_config=None, access_log=False)
    return ReadyServer(config)


def _serve(app_obj: Any, host: str, port: int, on_ready: Callable[[], None] | None = None) -> None:
    from hub.runtime import tune_gc

    tune_gc()
    make_server(app_obj, host, port, on_ready).run()


@app.command()
def run(
    host: str = typer.Option(None, help="Listen address (default CLIENTHUB_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Listen port (default CLIENTHUB_PORT, 8000)."),
    threads: int = typer.Option(None, help="Worker threads (default CLIENTHUB_WORKER_THREADS)."),
) -> None:
    """Web, worker and scheduler in one process: the default way to start."""
    from hub.http.app import create_app
    from hub.scheduler import Scheduler
    from hub.worker import Worker

    _override(host, port)
    settings = get_settings()
    engine = _prepare()
    first = _first_admin(engine, settings)
    host = host or settings.host
    port = port or settings.port
    workers = [Worker(engine, settings=settings) for _ in range(threads or settings.worker_threads)]
    scheduler = Scheduler(engine, settings)
    runners = [
        threading.Thread(target=w.run_forever, name=f"worker-{i}") for i, w in enumerate(workers)
    ]
    for t in runners:
        t.start()
    if settings.scheduler_enabled:
        scheduler.start()
    from hub.bitrix24 import app_setup

    app_setup.start_sandbox_self_install(settings, engine)  # no-op unless in sandbox mode
    try:
        _serve(
            create_app(settings, engine), host, port,
            on_ready=lambda: typer.echo(banner(settings, host, port, first), err=True),
        )  # fmt: skip
    finally:
        for w in workers:
            w.stop()
        for t in runners:
            t.join(timeout=60)
        if settings.scheduler_enabled:
            scheduler.stop()


@app.command()
def web(
    host: str = typer.Option(None, help="Listen address."),
    port: int = typer.Option(None, help="Listen port."),
) -> None:
    """The HTTP server only (webhooks, API, UI); stateless, run as many as you like."""
    from hub.http.app import create_app

    _override(host, port)
    settings = get_settings()
    engine = _prepare()
    first = _first_admin(engine, settings)
    host, port = host or settings.host, port or settings.port
    _serve(
        create_app(settings, engine), host, port,
        on_ready=lambda: typer.echo(banner(settings, host, port, first), err=True),
    )  # fmt: skip


@app.command()
def worker(
    threads: int = typer.Option(1, help="Worker threads in this process."),
    scheduler: bool = typer.Option(True, help="Stand as a scheduler leader candidate too."),
) -> None:
    """One worker process; start several on PostgreSQL. SIGTERM finishes the current job first."""
    from hub.scheduler import Scheduler
    from hub.worker import Worker

    settings = get_settings()
    engine = _prepare()
    workers = [Worker(engine, settings=settings) for _ in range(threads)]
    sched = Scheduler(engine, settings) if scheduler else None

    def _stop(_signum: int, _frame: Any) -> None:
        # No I/O here: a handler that writes to stderr while the interrupted code is writing a
        # log line raises "reentrant call" and the stop is lost.
        for w in workers:
            w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if sched:
        sched.start()
    extra = [
        threading.Thread(target=w.run_forever, name=f"worker-{i}")
        for i, w in enumerate(workers[1:])
    ]
    for t in extra:
        t.start()
    try:
        workers[0].run_forever()
    finally:
        for w in workers:
            w.stop()
        for t in extra:
            t.join(timeout=60)
        if sched:
            sched.stop()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def main() -> None:  # pragma: no cover - console entry
    app()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
