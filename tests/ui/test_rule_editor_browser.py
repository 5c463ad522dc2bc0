"""The structured rule editor in a real browser (Debian's Chromium): rows added and removed with
htmx and app.js under the real CSP, saved into the draft, and the "try a text" box routing the
same text differently by the draft than by the version in force."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.ui.helpers import htmx_settled, log_in

pytestmark = pytest.mark.browser
TEXT = "Хочу устроиться кассиром в Казани"


def department_for(page: Any, server: LiveServer, which: str) -> str:
    """The department the try box gives TEXT (a site form), by the draft or the published set."""
    page.goto(f"{server.url}/ui/rules")
    page.fill("textarea[name=text]", TEXT)
    page.select_option("select[name=channel]", "tilda")
    page.select_option("select[name=kind]", "form")
    page.select_option("select[name=which]", which)
    page.click("#try-text")
    page.wait_for_selector("#try-decision")
    dl = page.locator("#try-decision dl.kv")
    terms = dl.locator("dt").all_inner_texts()
    return str(dl.locator("dd").nth(terms.index("Отдел")).inner_text())


def test_a_condition_row_added_in_the_browser_changes_routing(
    page: Any, ui_sqlite_server: LiveServer, screenshots: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    log_in(page, ui_sqlite_server, "editor")
    assert department_for(page, ui_sqlite_server, "published") == "hr"

    page.goto(f"{ui_sqlite_server.url}/ui/rules/draft/rules/edit?key=vacancy")
    rows = page.locator("#when-rows .rule-row")
    assert rows.count() == 1 and rows.first.get_attribute("data-kind") == "topic"
    page.click("#add-when")
    rows.nth(1).wait_for()
    htmx_settled(page)  # the new row's select must be wired before it is changed
    rows.last.locator("select.rule-field").select_option("channel")
    channel = page.locator("#when-rows .rule-row[data-kind=channel] select[name$='-picked']")
    channel.wait_for()
    htmx_settled(page)
    channel.select_option("vk")
    page.click("#add-then")  # a row added by mistake, then removed with its ✕
    page.locator("#then-rows .rule-row").nth(4).wait_for()
    htmx_settled(page)
    page.locator("#then-rows .rule-row").last.locator("[data-remove-row]").click()
    assert page.locator("#then-rows .rule-row").count() == 4
    page.screenshot(path=screenshots / "rule-editor.png", full_page=True)
    page.click("#save")
    page.wait_for_url("**/ui/rules/draft/rules?notice=saved*")

    assert department_for(page, ui_sqlite_server, "draft") == "reserve"  # vk only now: fallback
    assert department_for(page, ui_sqlite_server, "published") == "hr"
    page.screenshot(path=screenshots / "rule-editor-try.png", full_page=True)

    page.goto(f"{ui_sqlite_server.url}/ui/rules/draft/rules/edit?key=vacancy")
    kinds = page.locator("#when-rows .rule-row").evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert kinds == ["topic", "channel"]
    assert errors == []


def test_an_error_is_shown_on_its_row_in_the_browser(
    page: Any, ui_sqlite_server: LiveServer, screenshots: Path
) -> None:
    log_in(page, ui_sqlite_server, "editor")
    page.goto(f"{ui_sqlite_server.url}/ui/rules/draft/rules/edit?key=vacancy")
    target = page.locator("#then-rows .rule-row[data-kind=target]")
    target.locator("input[name$='-stage']").fill("C2:NOPE")
    page.click("#save")
    row = page.locator("#then-rows .rule-row[data-kind=target]")
    assert "стадии «C2:NOPE» нет в воронке 2" in row.locator(".field-error").inner_text()
    assert row.locator("input[name$='-stage']").get_attribute("aria-invalid") == "true"
    assert page.locator("#then-rows .rule-row[data-kind=department] .field-error").count() == 0
    page.screenshot(path=screenshots / "rule-editor-error.png", full_page=True)
