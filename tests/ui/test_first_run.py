"""The README's path for a newcomer, in a real browser: the installed `clienthub run` (the console
script, as the README's first command calls it) in an empty directory, then the command its
banner names for the demo, in a second "terminal"; then log in with the password the first
command printed and look at what the demo did: routed appeals from every channel with their
traces, a dashboard with figures and charts, the deals, chats and calls in the sandbox portal,
and an operator's answer written there reaching the customer. Screenshots go to
test-results/screenshots/."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.demo_platforms import retire, running
from hub.settings import get_settings
from tests.e2e.test_demo import EXPECTED, INSTALLED, Demo, running_hub

pytestmark = pytest.mark.browser

PASSWORD_LINE = re.compile(r"admin\s+пароль / password: (\S+)")
NEXT_LINE = re.compile(r"in a second terminal: (.+) demo$", re.M)
ANSWER = "Здравствуйте! Проверили: заказ передан курьеру, он позвонит за час."
CHART_TOTALS = """() => Array.from(document.querySelectorAll("canvas[data-chart]")).map(c => {
  const chart = window.Chart && window.Chart.getChart(c);
  if (!chart || !c.width || !c.height) return -1;
  return chart.data.datasets.reduce((sum, d) => sum + d.data.reduce((s, v) => s + (+v || 0), 0), 0);
})"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    assert Path(INSTALLED[0]).is_file(), "pip install -e . installs the clienthub script"
    with running_hub(tmp_path_factory.mktemp("readme"), cli=INSTALLED) as hub:
        yield hub


@contextmanager
def platforms_again(fresh: Demo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The demo's platforms (its fakes are gone with it) running again, as a second `clienthub
    demo` starts them: the same sources and secrets, new addresses, written with the server's
    key. Then the polled mailbox is switched off again, as the demo leaves it."""
    monkeypatch.delenv("CLIENTHUB_SECRET_KEY", raising=False)
    monkeypatch.setenv("CLIENTHUB_KEY_FILE", str(fresh.dir / "clienthub.key"))
    get_settings.cache_clear()
    try:
        with running(fresh.engine, cabinets=False) as platforms:
            yield platforms
            retire(fresh.engine, platforms)
    finally:
        get_settings.cache_clear()


def test_the_readme_path_from_first_start_to_a_filled_ui(
    fresh: Demo, page: Any, screenshots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    banner = fresh.log.read_text()
    found = PASSWORD_LINE.search(banner)
    assert found, f"the first start must print the admin's password:\n{banner[-3000:]}"
    assert f"{fresh.url}/ui/" in banner and "/sandbox" in banner
    assert banner.index("Uvicorn running") < banner.index("ClientHub запущен / is running")
    assert "публикую правила" in banner  # the first start says what it is doing
    # The demo exactly as the banner says to start it: a command that works in this shell.
    next_step = NEXT_LINE.search(banner)
    assert next_step, banner[-3000:]
    demo = shlex.split(next_step.group(1))
    assert demo in (INSTALLED, ["clienthub"]), demo
    done = fresh.command(*demo, "demo", "--timeout", "150")
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-3000:]}"
    assert "Готово" in done.stdout

    page.goto(f"{fresh.url}/")
    page.wait_for_url("**/ui/login**")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", found.group(1))
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/dashboard")
    assert "Сводка" in page.inner_text("header nav") and "Песочница" in page.inner_text("header")

    # The dashboard has the demo's figures: appeals counted, charts drawn with data, time to
    # deal per department.
    total = int(re.sub(r"\D", "", page.inner_text("#total")))
    assert total >= sum(EXPECTED.values()), total
    page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length >= 3")
    charts = page.evaluate(CHART_TOTALS)
    assert len(charts) >= 3 and all(n > 0 for n in charts), charts
    speed = page.inner_text("#times-departments")
    assert "Данных пока нет" not in speed and len(speed.splitlines()) > 1, speed
    page.screenshot(path=screenshots / "first-run-dashboard.png", full_page=True)

    page.goto(f"{fresh.url}/ui/appeals")
    rows = page.inner_text("table")
    for channel in EXPECTED:
        assert channel in rows, f"no {channel} appeal in the list"
    page.screenshot(path=screenshots / "first-run-appeals.png", full_page=True)

    # One appeal's "why": the routing trace in plain Russian and the deal in the sandbox.
    page.goto(f"{fresh.url}/ui/appeals?channel=telegram")
    page.click("table tbody tr a")
    page.wait_for_url(re.compile(r".*/ui/appeals/\d+$"))
    assert page.inner_text("#trace").strip(), "the appeal shows its routing trace"
    deal = page.get_attribute("#deal-link", "href")
    assert deal and deal.startswith("/ui/sandbox/deals/"), deal
    page.screenshot(path=screenshots / "first-run-appeal.png", full_page=True)
    page.goto(f"{fresh.url}{deal}")
    assert "ClientHub #" in page.inner_text("#timeline")
    page.screenshot(path=screenshots / "first-run-sandbox-deal.png", full_page=True)
    chat = page.get_attribute("a[href^='/ui/sandbox/chats/']", "href")
    assert chat, "the Telegram deal has its Open Lines chat"

    # The sandbox as a portal user sees it: deals, chats with the operator's answers, calls.
    for tab in ("deals", "chats", "calls"):
        page.goto(f"{fresh.url}/ui/sandbox?tab={tab}")
        assert page.locator(f"#sandbox-{tab} tbody tr").count() > 0, f"empty {tab}"
        page.screenshot(path=screenshots / f"first-run-sandbox-{tab}.png", full_page=True)

    # Answer the customer as a portal operator: the portal's event brings the answer to
    # ClientHub, which sends it through Telegram (running again, as the demo runs it); the chat
    # then shows it delivered.
    with platforms_again(fresh, monkeypatch) as platforms:
        page.goto(f"{fresh.url}{chat}")
        page.fill("#chat-reply textarea[name=text]", ANSWER)
        page.click("#chat-reply-send")
        page.wait_for_url("**?notice=sent")
        mine = page.locator("#messages .message.out", has_text=ANSWER)
        assert mine.count() == 1
        deadline = time.monotonic() + 90
        while "доставлено" not in mine.inner_text() and time.monotonic() < deadline:
            time.sleep(1)
            page.reload()
            mine = page.locator("#messages .message.out", has_text=ANSWER)
        assert "доставлено" in mine.inner_text(), fresh.log.read_text()[-3000:]
        assert [m for m in platforms.telegram.sent if ANSWER in m["text"]], platforms.telegram.sent
        page.screenshot(path=screenshots / "first-run-sandbox-reply.png", full_page=True)
