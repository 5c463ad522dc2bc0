"""The admin UI in a real browser: Debian's Chromium, the real app on loopback, SQLite.

Screenshots of the pages go to test-results/screenshots/ (kept by CI as artifacts).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from hub import queue as job_queue
from hub.db import session_scope
from hub.demo_generate import generate
from hub.models import Appeal, Job, RuleSetVersion
from hub.pipeline import appeal_input
from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.rules_io import read_dir
from tests.conftest import LiveServer
from tests.ui.helpers import NOON, SAMPLE, add_appeal, log_in

pytestmark = pytest.mark.browser


def first_assignee(engine: Engine, appeal_id: int) -> str:
    """Who the sample rules give this appeal at noon (the first of a fresh round robin)."""
    rules = compile_files(read_dir(SAMPLE), version=1)
    with session_scope(engine, read_only=True) as s:
        appeal = s.get(Appeal, appeal_id)
        assert appeal is not None
        decision = rules.decide(appeal_input(appeal), now=NOON, state=MemoryAssignmentState())
    assert decision.assignee is not None
    return decision.assignee.id


def test_login_shows_only_what_the_role_may_use(
    page: Any, ui_sqlite_server: LiveServer, screenshots: Path
) -> None:
    page.goto(f"{ui_sqlite_server.url}/ui/appeals")
    page.wait_for_url("**/ui/login?next=/ui/appeals")
    page.screenshot(path=screenshots / "login.png")
    page.fill("input[name=login]", "reviewer")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Неверный логин или пароль" in page.inner_text(".error")
    log_in(page, ui_sqlite_server, "reviewer")
    menu = page.inner_text("header nav")
    assert "Обращения" in menu and "Журнал" in menu
    assert "Очередь" not in menu and "Пользователи" not in menu
    assert page.goto(f"{ui_sqlite_server.url}/ui/queue").status == 403


def test_absence_changes_routing_then_publish_and_restore(
    page: Any, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine, screenshots: Path
) -> None:
    ids = [add_appeal(ui_sqlite_engine, received_at=NOON + timedelta(minutes=i)) for i in range(6)]
    who = first_assignee(ui_sqlite_engine, ids[0])
    base = ui_sqlite_server.url
    log_in(page, ui_sqlite_server, "editor")
    page.goto(f"{base}/ui/rules/draft/employees?q={who}")
    page.click(f"a[href='/ui/rules/draft/employees/edit?key={who}']")
    page.fill("input[name=absences]", "2025-13-40")
    page.click("#save")
    error = page.locator("[data-field=absences] .field-error")
    assert "отсутствия" in error.inner_text()
    assert page.get_attribute("input[name=absences]", "aria-invalid") == "true"
    page.screenshot(path=screenshots / "employee-error.png")
    page.fill("input[name=absences]", "2025-11-12")
    page.click("#save")
    page.wait_for_url("**/ui/rules/draft/employees?notice=saved*")

    page.goto(f"{base}/ui/rules")
    page.select_option("select[name=size]", "1000")
    page.click("#test-draft")
    page.wait_for_selector("#draft-test-progress")  # answered at once; polls until done
    page.wait_for_selector("#draft-test")
    assert page.locator("#draft-test-progress").count() == 0  # replaced, polling stopped
    assert int(page.inner_text("#changed-count")) >= 1
    assert f"({who})" in page.inner_text("#assignee-changes")
    assert f"#{ids[0]}" in page.inner_text("#changed-appeals")
    page.screenshot(path=screenshots / "rules-test-draft.png", full_page=True)

    page.fill("input[name=comment]", f"{who} в отпуске 12.11")
    page.click("#publish")
    page.wait_for_url("**/ui/rules?notice=published:2")
    assert "Версия 2 опубликована" in page.inner_text(".notice")

    page.click("tr[data-version='1'] button.restore")
    page.wait_for_url("**/ui/rules?notice=published:3")
    assert "действует" in page.inner_text("tr[data-version='3']")
    with session_scope(ui_sqlite_engine, read_only=True) as s:
        v1, v2, v3 = s.execute(select(RuleSetVersion).order_by(RuleSetVersion.id)).scalars()
    assert v3.files == v1.files and v2.files != v1.files
    page.goto(f"{base}/ui/rules/diff?a=1&b=2")
    assert "2025-11-12" in page.inner_text(".diff .add")
    page.screenshot(path=screenshots / "rules-diff.png")


def test_read_an_appeals_trace(
    page: Any, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine, screenshots: Path
) -> None:
    generate(ui_sqlite_engine, 120, months=1, seed=11)
    appeal = add_appeal(ui_sqlite_engine, author_phone="+79161234567")
    log_in(page, ui_sqlite_server, "reviewer")
    page.goto(f"{ui_sqlite_server.url}/ui/appeals")
    page.screenshot(path=screenshots / "appeals.png")
    page.click(f"a[href='/ui/appeals/{appeal}']")
    trace = page.inner_text("#trace")
    assert "Правило «Вакансии" in trace and "Тема «Вакансии и трудоустройство»" in trace
    assert "вакансия" in page.inner_text("#trace .words")
    assert "Хочу устроиться продавцом" in page.inner_text("#appeal-text")
    page.screenshot(path=screenshots / "appeal.png", full_page=True)


def test_retry_a_dead_letter(
    page: Any, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine, screenshots: Path
) -> None:
    appeal = add_appeal(ui_sqlite_engine)
    with session_scope(ui_sqlite_engine) as s:
        job_queue.enqueue(s, "deliver.appeal", f"appeal:{appeal}", {"appeal_id": appeal})
        s.execute(
            update(Job).values(state="dead", attempts=14, last_error="Bitrix24 400: ACCESS_DENIED")
        )
        job_id = s.execute(select(Job.id)).scalar_one()
    log_in(page, ui_sqlite_server, "operator")
    page.goto(f"{ui_sqlite_server.url}/ui/queue")
    row = page.locator(f"tr[data-job='{job_id}']")
    assert "ACCESS_DENIED" in row.inner_text()
    page.screenshot(path=screenshots / "queue.png")
    row.locator("button.retry-one").click()
    page.wait_for_url("**/ui/queue?notice=retried:1")
    assert page.locator(f"tr[data-job='{job_id}']").count() == 0
    with session_scope(ui_sqlite_engine, read_only=True) as s:
        job = s.get(Job, job_id)
        assert job is not None and (job.state, job.attempts) == ("queued", 0)


def test_a_stores_csv_with_an_error_shows_it_next_to_the_line(
    page: Any, ui_sqlite_server: LiveServer, tmp_path: Path, screenshots: Path
) -> None:
    lines = read_dir(SAMPLE)["stores.csv"].splitlines(keepends=True)
    lines[6] = lines[6].replace(",moscow,", ",atlantis,", 1)
    upload = tmp_path / "stores.csv"
    upload.write_text("".join(lines), encoding="utf-8")
    log_in(page, ui_sqlite_server, "editor")
    page.goto(f"{ui_sqlite_server.url}/ui/rules/draft/stores")
    page.set_input_files("#import-form input[name=upload]", str(upload))
    page.click("#import-form button")
    row = page.locator("tr.line-error[data-line='7']")
    assert "неизвестный регион «atlantis»" in row.locator(".field-error").inner_text()
    assert page.locator("tr.line-error").count() == 1
    page.screenshot(path=screenshots / "stores-import-error.png", full_page=True)


def test_main_pages_render_in_both_languages(
    page: Any, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine, screenshots: Path
) -> None:
    generate(ui_sqlite_engine, 600, months=2, seed=13)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, ui_sqlite_server, "admin")
    base = ui_sqlite_server.url
    for name in ("dashboard", "channels", "audit", "users", "rules/draft/rules"):
        page.goto(f"{base}/ui/{name}")
        page.screenshot(path=screenshots / f"{name.replace('/', '-')}.png", full_page=True)
    page.goto(f"{base}/ui/dashboard")
    page.wait_for_function("document.querySelectorAll('canvas[data-drawn]').length === 3")
    with page.expect_navigation(url="**/ui/dashboard"):
        page.select_option("header select[name=language]", "en")
    assert page.inner_text("h1") == "Dashboard"
    page.screenshot(path=screenshots / "dashboard-en.png", full_page=True)
    assert errors == []
