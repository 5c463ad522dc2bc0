"""`clienthub channels`: connect VK, Telegram and OK on the platforms' side, and see how the
channels' intake is doing (pollers, unsupported events)."""

from __future__ import annotations

import secrets as secrets_mod
from typing import Any

import typer

from connectors.base import SourceConfig
from hub.db import get_engine, session_scope
from hub.settings import get_settings

channels_app = typer.Typer(help="Channel setup on the platforms' side, and intake status.")
setup_app = typer.Typer(help="Register ClientHub with a platform.", no_args_is_help=True)
channels_app.add_typer(setup_app, name="setup")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _source(channel: str, name: str) -> SourceConfig:
    from hub.storage import sources as store

    with session_scope(get_engine(), read_only=True) as s:
        for row in store.list_all(s):
            if row.channel == channel and row.source == name:
                return store.to_config(row)
    raise _fail(
        f"no source {channel}/{name}; add it first: clienthub sources add {channel} {name} ..."
    )


def _save(source: SourceConfig, *, config: dict[str, Any], secrets: dict[str, str]) -> None:
    from hub.cli_ops import cli_actor
    from hub.storage import sources as store

    with session_scope(get_engine()) as s:
        store.upsert(
            s, channel=source.channel, source=source.source, config=config, secrets=secrets,
            actor=cli_actor(),
        )  # fmt: skip


def _hook_url(public_url: str | None, channel: str, source: str) -> str:
    base = (public_url or get_settings().effective_public_url()).rstrip("/")
    if not base.startswith("https://"):
        typer.echo(
            f"warning: {base} is not https; the platforms accept only HTTPS webhooks", err=True
        )
    return f"{base}/hooks/{channel}/{source}"


def _new_secret() -> str:
    # Telegram allows 1-256 characters of A-Z, a-z, 0-9, _ and -; token_urlsafe uses exactly those.
    return secrets_mod.token_urlsafe(32)


@setup_app.command("telegram")
def setup_telegram(
    source: str,
    url: str = typer.Option(None, help="Public HTTPS base URL (default CLIENTHUB_PUBLIC_URL)."),
    polling: bool = typer.Option(False, help="Use getUpdates instead: removes the webhook."),
) -> None:
    """setWebhook with a secret token (created and stored if missing), or switch to polling."""
    from connectors.platform_http import PlatformError
    from connectors.telegram import client_for

    src = _source("telegram", source)
    if not src.secrets.get("token"):
        raise _fail("the source has no bot token: --secret token=<from BotFather>")
    config, secrets = dict(src.config), dict(src.secrets)
    try:
        with client_for(src) as client:
            if polling:
                client.delete_webhook()
                config["intake"] = "polling"
                _save(src, config=config, secrets=secrets)
                typer.echo(f"telegram/{source}: webhook removed; updates are polled (getUpdates)")
                return
            secrets.setdefault("webhook_secret", _new_secret())
            hook = _hook_url(url, "telegram", source)
            client.set_webhook(hook, secrets["webhook_secret"])
            info = client.get_webhook_info()
    except PlatformError as exc:
        raise _fail(exc.detail) from None
    config.pop("intake", None)
    _save(src, config=config, secrets=secrets)
    typer.echo(f"telegram/{source}: webhook set to {info.get('url') or hook}")
    if info.get("last_error_message"):
        typer.echo(f"  Telegram reports: {info['last_error_message']}")


@setup_app.command("ok")
def setup_ok(
    source: str,
    url: str = typer.Option(None, help="Public HTTPS base URL (default CLIENTHUB_PUBLIC_URL)."),
) -> None:
    """me/subscribe this source's webhook URL (with its unguessable ?token=)."""
    from connectors.ok import client_for
    from connectors.platform_http import PlatformError

    src = _source("ok", source)
    if not src.secrets.get("token"):
        raise _fail("the source has no group token: --secret token=<from the group's API settings>")
    secrets = dict(src.secrets)
    secrets.setdefault("url_token", _new_secret())
    hook = f"{_hook_url(url, 'ok', source)}?token={secrets['url_token']}"
    try:
        with client_for(src) as client:
            client.subscribe(hook)
            subscribed = [s.get("url") for s in client.subscriptions()]
    except PlatformError as exc:
        raise _fail(exc.detail) from None
    _save(src, config=dict(src.config), secrets=secrets)
    state = "subscribed" if hook in subscribed else "NOT in the subscription list yet"
    typer.echo(f"ok/{source}: {state} ({_hook_url(url, 'ok', source)}?token=***)")


@setup_app.command("vk")
def setup_vk(
    source: str,
    url: str = typer.Option(None, help="Public HTTPS base URL (default CLIENTHUB_PUBLIC_URL)."),
) -> None:
    """Check the source and print what to enter in the community's Callback API settings."""
    src = _source("vk", source)
    missing = [k for k in ("group_id", "confirmation") if not src.config.get(k)]
    missing += [f"secret {k}" for k in ("secret", "token") if not src.secrets.get(k)]
    hook = _hook_url(url, "vk", source)
    typer.echo(f"In VK: community → Управление → Работа с API → Callback API:\n  URL: {hook}")
    typer.echo(
        "  version 5.199; secret key: the source's 'secret'; event types: see docs/channels.md"
    )
    if missing:
        raise _fail(f"the source lacks {', '.join(missing)}")
    typer.echo(f"vk/{source}: ready; press «Подтвердить» in VK")


@channels_app.command("status")
def status() -> None:
    """Sources per channel, poller cursors with their last error, unsupported event kinds."""
    from hub.storage import poller_cursors, unsupported_events
    from hub.storage import sources as store

    with session_scope(get_engine(), read_only=True) as s:
        rows = [r for r in store.list_all(s) if r.channel in ("vk", "telegram", "ok")]
        unsupported = unsupported_events.summary(s)
    cursors = poller_cursors.list_all(get_engine())
    for r in rows:
        intake = r.config.get("intake") or (
            "comments polled" if r.config.get("poll_comments") else "webhook"
        )
        typer.echo(f"{r.channel}/{r.source} [{'on' if r.enabled else 'off'}] intake: {intake}")
    for c in cursors:
        state = f"error: {c.last_error}" if c.last_error else "ok"
        typer.echo(f"poller {c.name}: last ok {c.last_ok_at or 'never'}; {state}")
    for u in unsupported:
        typer.echo(
            f"unsupported: {u.channel}/{u.source} {u.event_type or '(no type)'} × {u.count}, "
            f"latest raw event #{u.last_id} at {u.last_received_at:%Y-%m-%d %H:%M}"
        )
    if not (rows or cursors or unsupported):
        typer.echo("no VK, Telegram or OK sources")
