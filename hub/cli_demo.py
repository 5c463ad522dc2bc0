"""`clienthub demo`: fill the database with a realistic history (UI demos and benchmarks)."""

from __future__ import annotations

import typer

demo_app = typer.Typer(help="Demo data: a realistic history of routed appeals.")


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    generate: int = typer.Option(
        0, "--generate", help="Insert N appeals (with raw events and delivery jobs)."
    ),
    months: int = typer.Option(6, help="Spread the appeals over this many months, up to now."),
    seed: int = typer.Option(1, help="Random seed: the same seed gives the same history."),
) -> None:
    """Generate N appeals routed by the published rules, with traces, states and timings."""
    if ctx.invoked_subcommand is not None:
        return
    if generate <= 0:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    from hub import migrations
    from hub.bootstrap import ensure_defaults
    from hub.db import get_engine
    from hub.demo_generate import generate as run
    from hub.settings import get_settings

    settings = get_settings()
    migrations.upgrade(settings.database_url)
    engine = get_engine()
    ensure_defaults(engine, settings)
    with typer.progressbar(length=generate, label="обращения") as bar:
        try:
            first = run(engine, generate, months=months, seed=seed, progress=bar.update)
        except LookupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"добавлено {generate} обращений: #{first}…#{first + generate - 1}")
