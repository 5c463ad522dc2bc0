"""The platforms of `clienthub demo`: the fakes of hub/fakes on loopback ports in the demo's own
process, and ClientHub's channel sources pointing at them.

Sources are written through hub.storage.sources into the database the server uses (secrets
encrypted with its key), and connected the way an admin connects a real platform: VK's
confirmation handshake, Telegram ``setWebhook`` with a secret token, OK ``me/subscribe``.
Secrets are kept across runs (the server caches sources for a few seconds); only the fakes'
addresses change. Every demo source carries ``config.demo = true``, so a real source of the
same name is never overwritten.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from hub.db import session_scope
from hub.demo_script import (
    LINE_CTI,
    LINE_MANGO,
    LINE_UIS,
    MAILBOX,
    TELEGRAM_CHANNEL,
    TWOGIS_BRANCH,
    VK_GROUP,
    YANDEX_ORG,
)
from hub.fakes.imap import FakeImap
from hub.fakes.ok import FakeOk
from hub.fakes.pbx import FakePbx
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.fakes.twogis import FakeTwoGis
from hub.fakes.vk import FakeVk
from hub.fakes.yandex import FakeYandex
from hub.storage import sources as sources_store

VK = ("vk", f"club{VK_GROUP}")
TELEGRAM = ("telegram", "demo_bot")
OK = ("ok", "demo_group")
FORM = ("form", "site")  # the site form every install has (CLIENTHUB_INITIAL_SOURCES)
TILDA = ("tilda", "demo_landing")
EMAIL = ("email", "demo_support")
MANGO = ("mango", "demo_hotline")
UIS = ("uis", "demo_retail")
CTI = ("cti", "demo_asterisk")
TWOGIS = ("twogis", TWOGIS_BRANCH)
YANDEX = ("yandex", YANDEX_ORG)


RETIRE_GRACE_SECONDS = 2.0


class DemoError(RuntimeError):
    """Something the user must fix before the demo can run; the message says what, in Russian."""


def _token(n: int = 24) -> str:
    return secrets.token_urlsafe(n)


# What each demo source needs as secrets, made up once and kept in the database afterwards.
NEW_SECRETS: dict[tuple[str, str], Any] = {
    VK: lambda: {"secret": _token(), "token": f"vk1.a.{_token(32)}"},
    # webhook_secret and url_token are what `clienthub channels setup` creates; made here, they
    # are in the database before the platform is told, so the server never sees a half setup.
    TELEGRAM: lambda: {
        "token": f"{secrets.randbelow(10**9) + 10**9}:{_token(26)}",
        "webhook_secret": _token(32),
    },
    OK: lambda: {"token": f"tkn1.{_token(32)}", "url_token": _token(32)},
    TILDA: lambda: {"api_key": _token()},
    EMAIL: lambda: {"password": _token(12)},
    MANGO: lambda: {"key": secrets.token_hex(16), "salt": secrets.token_hex(16)},
    UIS: lambda: {"secret": _token()},
    CTI: lambda: {"token": _token()},
    TWOGIS: lambda: {"login": "demo@retail-sample.ru", "password": _token(12)},
    YANDEX: lambda: {"session_id": f"3:{_token(20)}", "session_id2": f"3:{_token(20)}"},
}
TITLES = {
    VK: "Демо: сообщество ВКонтакте магазина 1012",
    TELEGRAM: "Демо: бот Telegram",
    OK: "Демо: группа в Одноклассниках",
    TILDA: "Демо: лендинг на Tilda",
    EMAIL: "Демо: ящик поддержки",
    MANGO: "Демо: горячая линия Mango Office",
    UIS: "Демо: линия UIS",
    CTI: "Демо: Asterisk",
    TWOGIS: "Демо: филиал 2ГИС магазина 1204",
    YANDEX: "Демо: организация в Яндекс Бизнесе, магазин 1614",
}


@dataclass
class Platforms:
    """The running fakes and the demo's sources (with their secrets)."""

    sources: dict[tuple[str, str], SourceConfig]
    vk: FakeVk
    telegram: FakeTelegram
    ok: FakeOk
    pbx: FakePbx
    imap: FakeImap
    twogis: FakeTwoGis | None = None
    yandex: FakeYandex | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def secret(self, key: tuple[str, str], name: str) -> str:
        return self.sources[key].secrets[name]


def _existing(engine: Engine) -> dict[tuple[str, str], SourceConfig]:
    from hub.crypto import SecretKeyError

    with session_scope(engine, read_only=True) as s:
        rows = sources_store.list_all(s)
    try:
        return {(r.channel, r.source): sources_store.to_config(r) for r in rows}
    except SecretKeyError:
        raise DemoError(
            "секреты источников в базе не расшифровываются ключом демо: запустите демо в том же "
            "каталоге и с теми же CLIENTHUB_SECRET_KEY / CLIENTHUB_KEY_FILE, что и сервер."
        ) from None


def load_secrets(engine: Engine, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The demo sources' secrets: kept from an earlier run, or made up now. A source of that
    name that is not a demo source stops the demo instead of being overwritten."""
    found = _existing(engine)
    out: dict[tuple[str, str], dict] = {}
    for key in keys:
        have = found.get(key)
        if have is not None and not have.config.get("demo"):
            raise DemoError(
                f"источник {key[0]}/{key[1]} уже настроен и он не демонстрационный: демо его не "
                "трогает. Запустите демо на отдельной базе (CLIENTHUB_DATABASE_URL)."
            )
        fresh = NEW_SECRETS[key]()
        out[key] = {**fresh, **(have.secrets if have else {})}
    return out


def form_source(engine: Engine) -> SourceConfig:
    """``form/site``: created on first start; recreated as it would be if someone removed it."""
    found = _existing(engine).get(FORM)
    if found is None:
        with session_scope(engine) as s:
            sources_store.upsert(s, channel=FORM[0], source=FORM[1], title="form/site")
        return SourceConfig(FORM[0], FORM[1], {}, {})
    return found


@contextmanager
def running(engine: Engine, *, cabinets: bool) -> Iterator[Platforms]:
    """Start every fake on loopback, with the secrets of the demo sources; write the sources.
    ``cabinets``: also the 2GIS and Yandex cabinets (when the server polls them)."""
    keys = [VK, TELEGRAM, OK, TILDA, EMAIL, MANGO, UIS, CTI]
    keys += [TWOGIS, YANDEX] if cabinets else []
    sec = load_secrets(engine, keys)
    vk = FakeVk(group_id=VK_GROUP, token=sec[VK]["token"], secret=sec[VK]["secret"])
    telegram = FakeTelegram(token=sec[TELEGRAM]["token"])
    ok = FakeOk(token=sec[OK]["token"])
    pbx = FakePbx(mango_key=sec[MANGO]["key"], mango_salt=sec[MANGO]["salt"])
    imap = FakeImap()
    imap.add_user(MAILBOX, sec[EMAIL]["password"])
    twogis = yandex = None
    if cabinets:
        twogis = FakeTwoGis(login=sec[TWOGIS]["login"], password=sec[TWOGIS]["password"])
        yandex = FakeYandex(
            session_id=sec[YANDEX]["session_id"], session_id2=sec[YANDEX]["session_id2"]
        )
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(serve(fake.app))
            for name, fake in (
                ("vk", vk),
                ("telegram", telegram),
                ("ok", ok),
                ("pbx", pbx),
                ("twogis", twogis),
                ("yandex", yandex),
            )  # fmt: skip
            if fake is not None
        }
        host, port = stack.enter_context(imap.serve())
        urls["imap"] = f"imap://{host}:{port}"
        configs = _configs(urls, host, port)
        sources = {k: SourceConfig(k[0], k[1], configs[k], sec[k]) for k in keys}
        save(engine, sources.values())
        sources[FORM] = form_source(engine)
        yield Platforms(sources, vk, telegram, ok, pbx, imap, twogis, yandex, urls)


def _configs(urls: dict[str, str], imap_host: str, imap_port: int) -> dict[tuple[str, str], dict]:
    demo: dict[str, Any] = {"demo": True}
    often = {"interval_seconds": 5, "rate_per_second": 100}
    return {
        VK: {**demo, "group_id": VK_GROUP, "confirmation": "d3m0c0de",
             "api_url": f"{urls['vk']}/method"},
        TELEGRAM: {**demo, "api_url": urls["telegram"], "channel_id": TELEGRAM_CHANNEL},
        OK: {**demo, "api_url": urls["ok"]},
        TILDA: {**demo},
        EMAIL: {**demo, "imap_host": imap_host, "imap_port": imap_port, "imap_security": "none",
                "username": MAILBOX, "start_from": "all"},
        MANGO: {**demo, "api_url": f"{urls['pbx']}/vpbx",
                "lines": {LINE_MANGO: {"name": "Розница, Зеленоград"}}},
        UIS: {**demo, "lines": {LINE_UIS: {"name": "Розница, Пушкин", "callback_task": True}},
              "recording_hosts": ["127.0.0.1"]},
        CTI: {**demo, "lines": {LINE_CTI: {"name": "Нижний Новгород"}}},
        TWOGIS: {**demo, "api_url": urls.get("twogis", ""), **often},
        YANDEX: {**demo, "api_url": urls.get("yandex", ""), **often},
    }  # fmt: skip


def save(engine: Engine, sources: Any, *, enabled: bool = True) -> None:
    with session_scope(engine) as s:
        for src in sources:
            sources_store.upsert(
                s,
                channel=src.channel,
                source=src.source,
                title=TITLES.get((src.channel, src.source), ""),
                config=src.config,
                secrets=src.secrets,
                enabled=enabled,
            )


def connect(platforms: Platforms, hub_url: str) -> list[str]:
    """Connect the messengers as an admin would; returns what was done, in Russian."""
    from connectors.ok import client_for as ok_client
    from connectors.telegram import client_for as telegram_client

    done = []
    vk = platforms.sources[VK]
    answer = platforms.vk.confirm(f"{hub_url}/hooks/vk/{vk.source}")
    if answer.status_code == 404:
        raise DemoError(
            f"ClientHub на {hub_url} не знает источник vk/{vk.source}, только что записанный в "
            "базу демо: запустите демо в том же каталоге и с теми же CLIENTHUB_* (база, ключ), "
            "что и `clienthub run`."
        )
    if answer.text != vk.config["confirmation"]:
        raise DemoError(f"ВКонтакте: подтверждение сервера не прошло ({answer.status_code})")
    done.append(f"ВКонтакте: Callback API подтверждён для vk/{vk.source}")
    tg = platforms.sources[TELEGRAM]
    with telegram_client(tg) as client:
        client.set_webhook(f"{hub_url}/hooks/telegram/{tg.source}", tg.secrets["webhook_secret"])
    done.append(f"Telegram: setWebhook для telegram/{tg.source} с секретным токеном")
    ok = platforms.sources[OK]
    with ok_client(ok) as client:
        client.subscribe(f"{hub_url}/hooks/ok/{ok.source}?token={ok.secrets['url_token']}")
    done.append(f"Одноклассники: подписка me/subscribe для ok/{ok.source}")
    return done


def retire(engine: Engine, platforms: Platforms) -> list[str]:
    """The fakes stop with the demo: switch off the sources ClientHub polls (the mailbox, the
    review cabinets), so that the Channels page shows them off rather than failing."""
    polled = [k for k in (EMAIL, TWOGIS, YANDEX) if k in platforms.sources]
    save(engine, [platforms.sources[k] for k in polled], enabled=False)
    # A poll that read the source list just before this commit finishes within milliseconds on
    # loopback; give it that time before the fakes go, so it does not record a refused connect.
    time.sleep(RETIRE_GRACE_SECONDS)
    return [f"{c}/{s}" for c, s in polled]
