"""`clienthub demo`: a realistic stream of appeals through a running ClientHub's real paths.

The platforms' fakes (hub/fakes) run in this process on loopback ports; the demo writes demo
sources into the server's database, connects them as an admin would, sends every channel's
appeals the way the platforms do, waits (printing progress) until they are stored, routed and in
the sandbox portal, answers the messenger dialogues as an operator in the sandbox's Open Lines,
waits until the fakes hold the answers, and prints a summary. Exit 0 only if every expectation
held. Why in-process fakes, and what stays behind: docs/decisions/0011-demo.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub import demo_platforms as dp
from hub import demo_script as ds
from hub.db import session_scope
from hub.demo_platforms import DemoError
from hub.demo_send import Context, Sent, send_all
from hub.demo_watch import Watch, operator_replies, print_summary
from hub.models import Appeal
from hub.settings import Settings

Echo = Callable[[str], None]
NOT_RUNNING = 2
FAKE_NAMES = {"vk": "ВКонтакте", "telegram": "Telegram", "ok": "Одноклассники", "pbx": "АТС",
              "twogis": "2ГИС", "yandex": "Яндекс Бизнес", "imap": "почта"}  # fmt: skip


def default_url(settings: Settings) -> str:
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


def check_server(hub: str, settings: Settings) -> str:
    """ClientHub answers /readyz and serves the sandbox portal: the sandbox's base URL."""
    try:
        ready = httpx.get(f"{hub}/readyz", timeout=5)
    except httpx.HTTPError:
        from hub.cli_hint import cli_command

        cli = cli_command()
        raise DemoError(
            f"ClientHub не отвечает на {hub}. Сначала запустите `{cli} run` "
            f"(в другом терминале, в этом же каталоге), затем снова `{cli} demo`."
        ) from None
    if ready.status_code != 200:
        raise DemoError(f"ClientHub на {hub} не готов: {ready.text[:200]}")
    from hub.bitrix24.factory import portal_mode

    if portal_mode(settings) != "sandbox":
        raise DemoError(
            "демо работает только со встроенной песочницей Битрикс24 (оно само отвечает в ней "
            "как оператор), а здесь настроен настоящий портал (CLIENTHUB_B24_WEBHOOK_URL или "
            "CLIENTHUB_B24_CLIENT_ID). Запустите демо на отдельной установке."
        )
    sandbox = (settings.sandbox_url or f"{hub}/sandbox").rstrip("/")
    try:
        ok = httpx.get(f"{sandbox}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        raise DemoError(f"песочница Битрикс24 не отвечает на {sandbox}")
    return sandbox


def ensure_line(engine: Engine, settings: Settings, sandbox: str, deadline: float) -> int:
    """ClientHub installed in the sandbox and its connector on an open line: as an admin does it
    in Contact Center (open ClientHub's settings page, press «Подключить»)."""
    from hub.bitrix24.app_setup import connector_id
    from hub.storage import b24_tokens
    from hub.storage.replies import active_line

    conn = connector_id(settings)
    why = "приложение ClientHub ещё не установлено в песочницу"
    while time.monotonic() < deadline:
        with session_scope(engine, read_only=True) as s:
            installed = b24_tokens.get_row(s, None) is not None
            line = active_line(s, connector=conn)
            if line is not None:
                return int(line.line_id)
        if installed:
            options = {"CONNECTOR": conn, "LINE": "1", "ACTIVE_STATUS": False}
            opened = httpx.post(
                f"{sandbox}/_sandbox/placements/open",
                json={"placement": "SETTING_CONNECTOR", "options": options},
                timeout=30,
            )
            html = opened.json().get("html", "") if opened.status_code == 200 else ""
            token = re.search(r'name="token" value="([^"]+)"', html)
            action = re.search(r'<form method="post" action="([^"]+)"', html)
            if token and action:
                httpx.post(action.group(1), data={"token": token.group(1), "action": "activate"})
            why = f"коннектор ClientHub не подключается к линии 1 ({opened.status_code})"
        time.sleep(1)
    raise DemoError(f"{why}; посмотрите журнал `clienthub run`")


def blacklist(engine: Engine) -> str:
    """The caller goes on the blacklist the way staff put one there (a published rule version
    with an audit entry); a second run finds it listed."""
    from hub.blacklist import BlacklistError, add_phone

    try:
        with session_scope(engine) as s:
            done = add_phone(s, phone=ds.BLACKLISTED, actor="clienthub demo",
                             reason="демо: навязчивый обзвон")  # fmt: skip
    except BlacklistError as exc:
        raise DemoError(f"номер не добавить в чёрный список: {exc}") from None
    if done.already:
        return f"{done.phone} уже в чёрном списке (фильтр {done.filter_id})"
    return f"{done.phone} добавлен в чёрный список: опубликована версия правил {done.version_id}"


def check_database(settings: Settings) -> Engine:
    """The server's database, as this process's settings name it: it must exist and be
    migrated, or the demo is not looking at the server's data (another directory, other env)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from hub import migrations
    from hub.db import get_engine

    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite") and url.database and not Path(url.database).exists():
        raise DemoError(
            f"базы {url.database} здесь нет: запустите демо в том же каталоге и с теми же "
            "CLIENTHUB_*, что и `clienthub run`."
        )
    engine = get_engine()
    current, head = migrations.current_and_head(engine)
    if current != head:
        raise DemoError(f"база {url.render_as_string()} не та, что у сервера (схема {current})")
    return engine


def run_demo(url: str | None, timeout: float, echo: Echo, err: Echo) -> int:
    """The whole demo; the exit code: 0 all held, 1 something is missing, 2 cannot run."""
    from hub.settings import get_settings

    settings = get_settings()
    hub = (url or default_url(settings)).rstrip("/")
    try:
        sandbox = check_server(hub, settings)
        engine = check_database(settings)
        echo(f"ClientHub: {hub} — готов; Битрикс24: песочница {sandbox}")
        line = ensure_line(engine, settings, sandbox, time.monotonic() + timeout)
        echo(f"Контакт-центр: ClientHub подключён к открытой линии {line}")
        echo(f"Чёрный список: {blacklist(engine)}")
        return _run(engine, settings, hub, sandbox, timeout, echo)
    except DemoError as exc:
        err(f"ошибка: {exc}")
        return NOT_RUNNING


def _run(
    engine: Engine, settings: Settings, hub: str, sandbox: str, timeout: float, echo: Echo
) -> int:
    """Send, wait, answer, wait: each wait gets ``timeout`` seconds."""
    cabinets = settings.twogis_unofficial_cabinet_api and settings.yandex_unofficial_cabinet_api
    recording = settings.recording_allow_private_hosts
    with session_scope(engine, read_only=True) as s:
        after = int(s.execute(select(func.max(Appeal.id))).scalar() or 0)
    with dp.running(engine, cabinets=cabinets) as platforms:
        try:
            shown = ", ".join(f"{FAKE_NAMES[k]} {v}" for k, v in platforms.urls.items())
            echo(f"Платформы-имитаторы: {shown}")
            for done in dp.connect(platforms, hub):
                echo(f"  {done}")
            _explain_settings(cabinets, recording, echo)
            echo("Отправляю обращения:")
            ctx = Context(hub, platforms, ds.Run(), cabinets=cabinets, mango_recording=recording)
            sent = send_all(ctx, echo)
            watch = Watch(engine, sandbox, {*platforms.sources, dp.TWOGIS, dp.YANDEX}, after,
                          rest=f"{sandbox}/rest/1/{settings.sandbox_webhook_code}",
                          recorded_mango=recording)  # fmt: skip
            echo(f"Жду: сохранение, маршрутизация, сделки, чаты, звонки (до {timeout:.0f} с)")
            hint = "почту и отзывы ClientHub забирает по расписанию (раз в 15–30 с)"
            deadline = time.monotonic() + timeout
            watch.wait(lambda: all(s.settled for s in watch.status), deadline, echo, hint)
            echo("Оператор отвечает в открытых линиях песочницы:")
            operator_replies(watch, echo)
            echo("Жду, пока ответы дойдут до клиентов:")
            deadline = time.monotonic() + timeout
            watch.wait(lambda: _replies_seen(watch, platforms), deadline, echo)
        finally:  # also on Ctrl+C: nothing may go on polling a fake that is gone
            retired = ", ".join(dp.retire(engine, platforms))
            echo(f"Имитаторы остановлены; опрашиваемые источники выключены: {retired}")
    return _report(watch, sent, hub, sandbox, echo)


def _explain_settings(cabinets: bool, recording: bool, echo: Echo) -> None:
    if not cabinets:
        echo("Отзывы 2ГИС и Яндекса придут письмами-уведомлениями площадок в ящик поддержки "
             "(кабинеты площадок ClientHub опрашивает только с CLIENTHUB_TWOGIS_UNOFFICIAL_"
             "CABINET_API=true и CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API=true).")  # fmt: skip
    if not recording:
        echo("Запись звонка Mango не отправляется: АТС демо на 127.0.0.1, а ClientHub не "
             "скачивает записи с внутренних адресов (CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS); "
             "запись звонка Asterisk загружает скрипт АТС.")  # fmt: skip


def _report(watch: Watch, sent: list[Sent], hub: str, sandbox: str, echo: Echo) -> int:
    echo("")
    echo("Итог:")
    print_summary(watch, echo)
    echo("")
    echo("Смотрите:")
    pages = [("обращения и трассировки", "/ui/appeals"), ("дашборд", "/ui/dashboard"),
             ("каналы", "/ui/channels"), ("песочница Битрикс24", "/ui/sandbox")]  # fmt: skip
    for what, path in pages:
        echo(f"  {what}: {hub}{path}")
    echo(f"  чаты открытых линий: {sandbox}/_sandbox/openlines/chats")
    echo(f"  звонки в телефонии: {sandbox}/_sandbox/telephony")
    problems = [f"{s.appeal.label}: не отправлено ({s.detail})" for s in sent if not s.ok]
    problems += watch.missing()
    if problems:
        echo("")
        echo("Не получилось:")
        for p in problems:
            echo(f"  ✗ {p}")
        return 1
    echo("")
    echo("Готово: все каналы видны в интерфейсе и в песочнице.")
    return 0


def _platform_got(platforms: dp.Platforms) -> dict[str, list[str]]:
    """What the customers actually received, per channel, as the fakes recorded it."""
    return {
        "vk": [m["text"] for m in platforms.vk.messages],
        "telegram": [m["text"] for m in platforms.telegram.sent],
        "ok": [m["text"] for m in platforms.ok.sent],
    }


def _replies_seen(watch: Watch, platforms: dp.Platforms) -> bool:
    """Every operator answer is in the platform fake, and ClientHub recorded it as sent."""
    got = _platform_got(platforms)
    for st in watch.status:
        if st.spec.reply:
            seen = any(st.spec.reply in text for text in got.get(st.spec.channel, []))
            st.reply_seen = seen and any(r.state == "sent" for r in st.replies)
    return all(st.reply_seen for st in watch.status if st.spec.reply)
