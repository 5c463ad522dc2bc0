"""`clienthub bitrix24`: install ClientHub as a Bitrix24 local application, run its setup, show
the Open Lines state."""

from __future__ import annotations

import typer

bitrix24_app = typer.Typer(
    help="Bitrix24 local application: install steps, setup, Open Lines state.",
    no_args_is_help=True,
)


def _steps(public: str, domain: str, configured: bool) -> list[str]:
    from hub.bitrix24 import app_setup

    scopes = app_setup.SCOPES.replace(",", ", ")
    return [
        "ClientHub must be reachable from the Internet over HTTPS: Bitrix24 posts the install "
        f"callback, events and pages to it. Public URL now: {public}",
        "Pin the portal before anything else, so that only it can install ClientHub:\n"
        f"    CLIENTHUB_PUBLIC_URL={public}\n"
        f"    CLIENTHUB_B24_PORTAL_DOMAIN={domain or '<your-portal>.bitrix24.ru'}\n"
        "   then restart ClientHub.",
        "In Bitrix24 (as an administrator who will stay with the company: local apps cannot be "
        "handed over): Приложения → Разработчикам → Другое → Локальное приложение.",
        "Fill in the form:\n"
        "    Тип: серверное; включите «Приложение использует только API»\n"
        f"    Путь вашего обработчика:          {public}/bitrix24/install\n"
        f"    Путь для первоначальной установки: {public}/bitrix24/install\n"
        f"    Права доступа: {scopes}\n"
        "   and save. Bitrix24 calls the installation path at once; ClientHub keeps the tokens.",
        "Bitrix24 then shows the application's keys. Put them into ClientHub's environment:\n"
        "    CLIENTHUB_B24_CLIENT_ID=local.…\n"
        "    CLIENTHUB_B24_CLIENT_SECRET=…\n"
        "   and restart. The setup job now registers the Open Lines connector «ClientHub», "
        "binds the events, the deal-card action and the «ClientHub» item of the left menu "
        "(or run `clienthub bitrix24 setup`).",
        "Контакт-центр → ClientHub → Подключить → choose the open line. ClientHub's settings "
        "page opens inside Bitrix24; press «Подключить к линии N».",
        "Check with `clienthub bitrix24 status`. Messages from VK, Telegram and OK now also "
        "appear in that open line; answers go back to the customer. For reviews and e-mail, "
        "staff use «Ответить клиенту» in the deal card (Ещё → Ответить клиенту)."
        + ("" if configured else "\n   (The keys are not configured yet: step 5 is pending.)"),
    ]


@bitrix24_app.command("install")
def install_command() -> None:
    """Print what the portal administrator must enter, step by step."""
    from hub.settings import get_settings

    settings = get_settings()
    public = settings.effective_public_url()
    steps = _steps(public, settings.b24_portal_domain, bool(settings.b24_client_id))
    typer.echo("Install ClientHub as a Bitrix24 local application (docs/bitrix24_app.md):\n")
    for i, step in enumerate(steps, 1):
        typer.echo(f"{i}. {step}\n")
    if not public.startswith("https://"):
        typer.echo("warning: CLIENTHUB_PUBLIC_URL is not https; Bitrix24 requires HTTPS", err=True)


@bitrix24_app.command("setup")
def setup_command() -> None:
    """Register the connector, bind the events, the deal-card action and the menu item now."""
    from hub.bitrix24 import app_setup
    from hub.bitrix24.errors import Bitrix24Error
    from hub.bitrix24.factory import NotConfigured
    from hub.db import get_engine
    from hub.settings import get_settings

    settings = get_settings()
    try:
        with app_setup.app_client(settings, get_engine()) as client:
            done = app_setup.setup(client, settings)
    except (NotConfigured, Bitrix24Error) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"connector «{app_setup.connector_id(settings)}» registered; events bound: "
        f"{done['events_bound']}, moved: {done['events_unbound']}; "
        f"placements bound (deal-card action, left-menu item): {done['placements_bound']}"
    )


@bitrix24_app.command("status")
def status_command() -> None:
    """Installed portal, active open line, chats and replies by state."""
    from sqlalchemy import func, select

    from hub.bitrix24 import app_setup
    from hub.db import session_scope
    from hub.models import ConnectorLine, OpenLineChat, PortalToken, Reply
    from hub.settings import get_settings

    with session_scope(read_only=True) as s:
        portals = list(s.execute(select(PortalToken.domain, PortalToken.updated_at)))
        lines = list(
            s.execute(select(ConnectorLine.domain, ConnectorLine.line_id, ConnectorLine.active))
        )
        chats = s.execute(select(func.count()).select_from(OpenLineChat)).scalar_one()
        replies = dict(s.execute(select(Reply.state, func.count()).group_by(Reply.state)).all())
    if not portals:
        typer.echo("not installed: run `clienthub bitrix24 install` for the steps")
    for domain, at in portals:
        typer.echo(f"installed on {domain} (tokens updated {at:%Y-%m-%d %H:%M})")
    for domain, line, active in lines:
        typer.echo(f"open line {line} on {domain}: {'on' if active else 'off'}")
    typer.echo(f"events URL: {app_setup.events_url(get_settings())}")
    states = ", ".join(f"{k} {v}" for k, v in sorted(replies.items())) or "none"
    typer.echo(f"chats: {chats}; replies: {states}")
