"""`clienthub demo`: show ClientHub working. Without options, a realistic stream of appeals
through every channel of a running ClientHub (hub/demo_live.py); with ``--generate N``, a bulk
history of routed appeals for UI demos and benchmarks (hub/demo_generate.py)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import typer

demo_app = typer.Typer(help="Demo: every channel through a running ClientHub, or bulk history.")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    generate: int = typer.Option(
        0, "--generate", help="Insert N appeals (with raw events and delivery jobs) instead."
    ),
    months: int = typer.Option(6, help="--generate: spread the appeals over this many months."),
    seed: int = typer.Option(1, help="--generate: the same seed gives the same history."),
    url: str = typer.Option(
        None, help="The running ClientHub (default http://CLIENTHUB_HOST:CLIENTHUB_PORT)."
    ),
    timeout: float = typer.Option(300, help="Give up waiting after this many seconds."),
) -> None:
    """Send appeals through every channel of a running ClientHub (`clienthub run`) and answer
    them in the sandbox portal; or, with --generate N, insert N routed appeals."""
    if ctx.invoked_subcommand is not None:
        return
    if generate > 0:
        _generate(generate, months, seed)
        return
    from hub.demo_live import run_demo

    code = run_demo(url, timeout, typer.echo, lambda m: typer.echo(m, err=True))
    raise typer.Exit(code)


def _generate(count: int, months: int, seed: int) -> None:
    """The preparation (migrations, first-start rules, compiling, routing the templates) says
    each step; then a bar that moves every batch of rows (hub/demo_generate.py)."""
    from hub import migrations
    from hub.bootstrap import ensure_defaults
    from hub.db import get_engine
    from hub.demo_generate import generate as run
    from hub.settings import get_settings

    def say(line: str) -> None:
        typer.echo(line, err=True)

    settings = get_settings()
    say("проверяю схему базы / checking the database schema…")
    migrations.upgrade(settings.database_url)
    engine = get_engine()
    ensure_defaults(engine, settings, say=say)
    with ExitStack() as stack:
        bars: list[Any] = []

        def progress(rows: int) -> None:
            if not bars:  # opened at the first rows, after the step messages
                bars.append(stack.enter_context(typer.progressbar(length=count, label="обращения")))
            bars[0].update(rows)

        try:
            first = run(engine, count, months=months, seed=seed, progress=progress, step=say)
        except LookupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"добавлено {count} обращений: #{first}…#{first + count - 1}")
