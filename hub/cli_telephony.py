"""`clienthub blacklist`: add a phone number (one action, a published rule version with an audit
entry), list the blacklisted numbers, bind the Bitrix24 deal-card action; `clienthub calls`:
recent calls with their recording and Bitrix24 telephony state."""

from __future__ import annotations

import typer
from sqlalchemy import select

from hub.db import get_engine, session_scope

blacklist_app = typer.Typer(
    help="Phone numbers whose calls are kept as spam.", no_args_is_help=True
)


@blacklist_app.command("add")
def add(
    phone: str = typer.Argument(..., help="The number in any spelling: +7 916…, 8 (916)…"),
    reason: str = typer.Option(None, help="Why (goes into the audit log and the version note)."),
    by: str = typer.Option("cli", help="Who does it (audit)."),
    appeal: int = typer.Option(None, help="The appeal it came from: tagged «спам»."),
) -> None:
    """Publish a rule version with the number in filters.yaml; later calls are spam."""
    from hub.blacklist import BlacklistError, add_phone

    try:
        with session_scope(get_engine()) as s:
            done = add_phone(s, phone=phone, actor=by, reason=reason, appeal_id=appeal)
    except BlacklistError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if done.already:
        typer.echo(f"{done.phone} is blacklisted already (filter {done.filter_id})")
    else:
        typer.echo(f"{done.phone} added to filter {done.filter_id}: version {done.version_id}")


@blacklist_app.command("list")
def list_numbers() -> None:
    """Numbers in the published rules' filters, by filter."""
    from hub.routing import service
    from hub.storage import rulesets

    with session_scope(get_engine(), read_only=True) as s:
        version = rulesets.published_id(s)
        if version is None:
            typer.echo("no published rules")
            return
        filters = service.compiled(s, version).filters
    for flt in filters:
        for number in sorted(flt.phones):
            typer.echo(f"{number}\t{flt.id}\t{flt.reason}")


@blacklist_app.command("bind-placement")
def bind_placement() -> None:
    """Add «В чёрный список» to the Bitrix24 deal card (needs the installed application)."""
    from hub.bitrix24 import app_setup
    from hub.bitrix24.errors import Bitrix24Error
    from hub.bitrix24.factory import NotConfigured
    from hub.settings import get_settings
    from hub.telephony_http import bind_placement as bind

    settings = get_settings()
    try:
        with app_setup.app_client(settings, get_engine()) as client:
            bound = bind(client, settings)
    except (NotConfigured, Bitrix24Error) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("bound" if bound else "already bound")


def calls_command(limit: int = typer.Option(20, min=1, max=500)) -> None:
    """Recent calls: outcome, recording, and the Bitrix24 telephony steps done."""
    from hub.models import Appeal, TelephonyCall

    with session_scope(get_engine(), read_only=True) as s:
        rows = s.execute(
            select(Appeal, TelephonyCall)
            .join(TelephonyCall, TelephonyCall.appeal_id == Appeal.id)
            .order_by(Appeal.id.desc())
            .limit(limit)
        ).all()
    for appeal, call in rows:
        f = appeal.fields or {}
        outcome = "answered" if f.get("answered") else ("missed" if f.get("ended") else "open")
        steps = ",".join(k for k, v in (call.steps or {}).items() if v in ("done",) or (
            isinstance(v, dict) and v.get("done")))  # fmt: skip
        error = f"  error: {call.last_error or call.recording_error}" if (
            call.last_error or call.recording_error) else ""  # fmt: skip
        typer.echo(
            f"#{appeal.id} {appeal.channel}/{appeal.source} {appeal.author_phone or '?'} → "
            f"{f.get('line') or '?'} {outcome} {f.get('duration') or 0}s [{appeal.state}] "
            f"recording={call.recording_state} b24={steps or '-'}{error}"
        )
