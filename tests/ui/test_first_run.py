"""The README's path for a newcomer, in a real browser: `clienthub run` in an empty directory,
`clienthub demo` in a second terminal, then log in with the password the first command printed and
look at what the demo did: routed appeals from every channel with their traces, the deals, chats
and calls in the sandbox portal, the dashboard. Screenshots go to test-results/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_demo import EXPECTED, Demo, running_hub

pytestmark = pytest.mark.browser

PASSWORD_LINE = re.compile(r"admin\s+пароль / password: (\S+)")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_hub(tmp_path_factory.mktemp("readme")) as hub:
        yield hub


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def test_the_readme_path_from_first_start_to_a_filled_ui(
    fresh: Demo, page: Any, screenshots: Path
) -> None:
    banner = fresh.log.read_text()
    found = PASSWORD_LINE.search(banner)
    assert found, f"the first start must print the admin's password:\n{banner[-3000:]}"
    assert f"{fresh.url}/ui/" in banner and "/sandbox" in banner and "clienthub demo" in banner

    done = fresh.run("--timeout", "150")
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-3000:]}"
    assert "Готово" in done.stdout

    page.goto(f"{fresh.url}/")
    page.wait_for_url("**/ui/login**")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", found.group(1))
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/dashboard")
    page.screenshot(path=screenshots / "first-run-dashboard.png", full_page=True)
    assert "Сводка" in page.inner_text("header nav") and "Песочница" in page.inner_text("header")

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

    # The sandbox as a portal user sees it: deals, chats with the operator's answers, calls.
    for tab in ("deals", "chats", "calls"):
        page.goto(f"{fresh.url}/ui/sandbox?tab={tab}")
        assert page.locator(f"#sandbox-{tab} tbody tr").count() > 0, f"empty {tab}"
        page.screenshot(path=screenshots / f"first-run-sandbox-{tab}.png", full_page=True)
    page.goto(f"{fresh.url}/ui/sandbox?tab=chats")
    page.click("#sandbox-chats tbody tr a")
    page.wait_for_url(re.compile(r".*/ui/sandbox/chats/\d+$"))
    assert page.locator("#chat").count() == 1
