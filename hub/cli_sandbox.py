"""`clienthub sandbox` (a local Bitrix24 portal) and `clienthub b24` (check the portal, show
deliveries)."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import func, select

b24_app = typer.Typer(help="Bitrix24: check the portal connection, show delivery state.")


def sandbox_command(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8765, help="Listen port."),
    db: Path = typer.Option(None, help="SQLite file (default CLIENTHUB_SANDBOX_DB)."),
    seed: Path = typer.Option(Path("routing_rules/sample"), help="Seed directory."),
    code: str = typer.Option(None, help="Webhook code (default CLIENTHUB_SANDBOX_WEBHOOK_CODE)."),
) -> None:
    """Serve a sandbox Bitrix24 portal: webhook at /rest/1/{code}/, calls at /_sandbox/calls."""
    import uvicorn

    from hub.bitrix24.sandbox import sandbox_from_settings
    from hub.settings import get_settings

    overrides = {k: v for k, v in {"sandbox_db": db, "sandbox_webhook_code": code}.items() if v}
    settings = get_settings().model_copy(update=overrides)
    app = sandbox_from_settings(settings, seed)
    typer.echo(
        f"Bitrix24 sandbox at http://{host}:{port}\n"
        f"  webhook: CLIENTHUB_B24_WEBHOOK_URL=http://{host}:{port}/rest/1/"
        f"{settings.sandbox_webhook_code}/\n"
        f"  calls:   http://{host}:{port}/_sandbox/calls",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@b24_app.command("check")
def check() -> None:
    """Call the configured portal once: who we are, the pipelines and their stages."""
    from hub.bitrix24.errors import Bitrix24Error
    from hub.bitrix24.factory import (
        WEBHOOK_SCOPES,
        NotConfigured,
        client_from_settings,
        portal_mode,
    )
    from hub.db import get_engine
    from hub.settings import get_settings

    settings = get_settings()
    try:
        client = client_from_settings(settings, get_engine())
        user = client.call("user.current").result
        cats = client.call("crm.category.list", {"entityTypeId": 2}).result["categories"]
    except (NotConfigured, Bitrix24Error) as exc:
        typer.echo(f"Bitrix24 check failed: {exc}", err=True)
        if portal_mode(settings) == "webhook":
            scopes = ", ".join(WEBHOOK_SCOPES)
            typer.echo(f"the inbound webhook needs the scopes: {scopes}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"mode: {portal_mode(settings)}, portal: {client.auth.portal}")
    typer.echo(f"user: {user.get('ID')} {user.get('NAME', '')} {user.get('LAST_NAME', '')}")
    for cat in cats:
        typer.echo(f"pipeline {cat['id']}: {cat['name']}")


@b24_app.command("deliveries")
def deliveries(limit: int = typer.Option(20, help="How many recent appeals to show.")) -> None:
    """Delivery state: counts, then the latest appeals with their CRM ids or errors."""
    from hub.db import get_engine, session_scope
    from hub.models import Appeal
    from hub.storage import crm_links

    with session_scope(get_engine(), read_only=True) as s:
        counts = dict(
            s.execute(select(Appeal.delivery_state, func.count()).group_by(Appeal.delivery_state))
            .tuples()
            .all()
        )
        links = crm_links.count_by_kind(s)
        rows = s.execute(select(Appeal).order_by(Appeal.id.desc()).limit(limit)).scalars().all()
    typer.echo("appeals by delivery state: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    typer.echo("CRM outbox: " + ", ".join(f"{k}={v}" for k, v in sorted(links.items())))
    for a in rows:
        crm = f"{a.crm_entity} #{a.crm_entity_id}" if a.crm_entity_id else "-"
        seen = a.crm_visible_at.isoformat(timespec="seconds") if a.crm_visible_at else "-"
        tail = f"  error: {a.delivery_error}" if a.delivery_error else ""
        typer.echo(f"#{a.id:<6} {a.delivery_state:<9} {crm:<14} visible {seen}{tail}")
