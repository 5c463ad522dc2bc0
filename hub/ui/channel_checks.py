"""The "test" button of a channel source: can ClientHub use it right now?

Each check is one line, passed or not, in the reader's language (``hub/ui/i18n.py``). The
platform checks ask the platform itself (Telegram getWebhookInfo, OK subscriptions, VK
groups.getById) with the source's own token, so a revoked token or a webhook pointing elsewhere
shows here before customers notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import SourceConfig
from hub.crypto import SecretKeyError
from hub.models import ChannelSource
from hub.storage import sources as sources_store
from hub.ui.i18n import N_, gettext


@dataclass
class Check:
    ok: bool
    message: str


def _platform(config: SourceConfig, hook_url: str) -> list[Check]:
    """One request to the platform; errors are reported, never raised."""
    from connectors.platform_http import PlatformError

    token = config.secrets.get("token")
    if config.channel not in ("telegram", "ok", "vk"):
        return [
            Check(True, gettext(N_("у этого канала нет API для проверки: ждём входящих событий")))
        ]
    if not token:
        return [Check(False, gettext(N_("нет токена (секрет token): платформу не спросить")))]
    try:
        if config.channel == "telegram":
            from connectors.telegram import client_for as tg

            with tg(config) as client:
                info: dict[str, Any] = client.get_webhook_info()
            if config.config.get("intake") == "polling":
                removed = gettext(N_("режим getUpdates; вебхук в Telegram снят"))
                return [Check(not info.get("url"), removed)]
            checks = [
                Check(
                    info.get("url") == hook_url,
                    gettext(
                        N_("вебхук в Telegram: %(url)s"),
                        url=info.get("url") or gettext(N_("не задан")),
                    ),
                )
            ]
            if info.get("last_error_message"):
                said = gettext(N_("Telegram сообщает: %(error)s"), error=info["last_error_message"])
                checks.append(Check(False, said))
            return checks
        if config.channel == "ok":
            from connectors.ok import client_for as ok

            with ok(config) as client:
                urls = [str(s.get("url", "")).split("?")[0] for s in client.subscriptions()]
            listed = ", ".join(urls) or gettext(N_("нет"))
            return [Check(hook_url in urls, gettext(N_("подписки OK: %(urls)s"), urls=listed))]
        from connectors.vk import client_for as vk

        with vk(config) as client:
            group = client.call("groups.getById", group_id=config.config.get("group_id", ""))
        return [Check(True, gettext(N_("ВКонтакте отвечает, сообщество: %(group)s"), group=group))]
    except PlatformError as exc:
        return [Check(False, gettext(N_("платформа ответила ошибкой: %(e)s"), e=exc.detail))]
    except Exception as exc:  # network trouble must show as a failed check, not a 500
        error = f"{type(exc).__name__}: {exc}"
        return [Check(False, gettext(N_("платформа недоступна: %(e)s"), e=error))]


def run(row: ChannelSource, hook_url: str) -> list[Check]:
    state = N_("источник включён") if row.enabled else N_("источник выключен")
    checks = [Check(row.enabled, gettext(state))]
    try:
        config = sources_store.to_config(row)
    except SecretKeyError:
        return [*checks, Check(False, gettext(N_("секреты не расшифровываются текущим ключом")))]
    count = gettext(N_("секретов: %(n)s, расшифровываются"), n=len(config.secrets))
    checks.append(Check(True, count))
    return [*checks, *_platform(config, hook_url)]
