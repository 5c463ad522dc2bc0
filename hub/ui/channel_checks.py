"""The "test" button of a channel source: can ClientHub use it right now?

Each check is one line, passed or not, in Russian. The platform checks ask the platform itself
(Telegram getWebhookInfo, OK subscriptions, VK groups.getById) with the source's own token, so
a revoked token or a webhook pointing elsewhere shows here before customers notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import SourceConfig
from hub.crypto import SecretKeyError
from hub.models import ChannelSource
from hub.storage import sources as sources_store


@dataclass
class Check:
    ok: bool
    message: str


def _platform(config: SourceConfig, hook_url: str) -> list[Check]:
    """One request to the platform; errors are reported, never raised."""
    from connectors.platform_http import PlatformError

    token = config.secrets.get("token")
    if config.channel not in ("telegram", "ok", "vk"):
        return [Check(True, "у этого канала нет API для проверки: ждём входящих событий")]
    if not token:
        return [Check(False, "нет токена (секрет token): платформу не спросить")]
    try:
        if config.channel == "telegram":
            from connectors.telegram import client_for as tg

            with tg(config) as client:
                info: dict[str, Any] = client.get_webhook_info()
            if config.config.get("intake") == "polling":
                return [Check(not info.get("url"), "режим getUpdates; вебхук в Telegram снят")]
            checks = [
                Check(
                    info.get("url") == hook_url,
                    f"вебхук в Telegram: {info.get('url') or 'не задан'}",
                )
            ]
            if info.get("last_error_message"):
                checks.append(Check(False, f"Telegram сообщает: {info['last_error_message']}"))
            return checks
        if config.channel == "ok":
            from connectors.ok import client_for as ok

            with ok(config) as client:
                urls = [str(s.get("url", "")).split("?")[0] for s in client.subscriptions()]
            return [Check(hook_url in urls, f"подписки OK: {', '.join(urls) or 'нет'}")]
        from connectors.vk import client_for as vk

        with vk(config) as client:
            group = client.call("groups.getById", group_id=config.config.get("group_id", ""))
        return [Check(True, f"ВКонтакте отвечает, сообщество: {group}")]
    except PlatformError as exc:
        return [Check(False, f"платформа ответила ошибкой: {exc.detail}")]
    except Exception as exc:  # network trouble must show as a failed check, not a 500
        return [Check(False, f"платформа недоступна: {type(exc).__name__}: {exc}")]


def run(row: ChannelSource, hook_url: str) -> list[Check]:
    checks = [Check(row.enabled, "источник включён" if row.enabled else "источник выключен")]
    try:
        config = sources_store.to_config(row)
    except SecretKeyError:
        return [*checks, Check(False, "секреты не расшифровываются текущим ключом")]
    checks.append(Check(True, f"секретов: {len(config.secrets)}, расшифровываются"))
    return [*checks, *_platform(config, hook_url)]
