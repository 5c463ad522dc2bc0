""" "Test the draft" over real HTTP: the start answers at once with the progress, the page polls
it (htmx, every 500 ms) and gets the result with both decisions' traces; only the columns routing
needs are read, in chunks; the poll has the start's role, CSRF and owner checks."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Appeal
from hub.pipeline import appeal_input
from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.storage import routing_sample
from hub.ui import draft_runs
from tests.conftest import LiveServer
from tests.integration.test_ui_directory import FILES, employee_form
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import NOON, add_appeal, login

SQLITE_ONLY = pytest.mark.parametrize("ui_db_url", ["sqlite"], indirect=True)
ABSENT_DAY = "2025-11-12"  # NOON's day: an absence then moves the appeals of that noon


def _number(html: str, element: str) -> int | None:
    found = re.search(rf'id="{element}">([^<]+)<', html)
    return int(re.sub(r"\D", "", found.group(1))) if found else None


def start(client: httpx.Client, size: int = 1000) -> tuple[httpx.Response, str]:
    r = client.post("/ui/rules/draft/test", data={"csrf_token": client.csrf, "size": str(size)})  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    token = re.search(r'hx-post="/ui/rules/draft/test/([\w-]+)"', r.text)
    assert token and 'hx-trigger="every 500ms"' in r.text and 'id="draft-test-progress"' in r.text
    return r, token.group(1)


def poll(client: httpx.Client, token: str, size: int = 1000) -> httpx.Response:
    """As htmx polls: a POST with the session's CSRF token in the X-CSRF-Token header."""
    return client.post(
        f"/ui/rules/draft/test/{token}", data={"size": str(size)},
        headers={"X-CSRF-Token": client.csrf, "HX-Request": "true"},  # type: ignore[attr-defined]
    )  # fmt: skip


def until_done(client: httpx.Client, token: str, size: int = 1000) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = poll(client, token, size)
        assert r.status_code == 200, r.text
        if 'id="draft-test"' in r.text:
            return r.text
        assert 'id="draft-test-progress"' in r.text and "draft-test-error" not in r.text, r.text
        time.sleep(0.1)
    raise AssertionError("the test of the draft did not finish")


def run_draft_test(client: httpx.Client, size: int = 1000) -> str:
    """Start the test and poll it to its result, as the rules page does."""
    _, token = start(client, size)
    return until_done(client, token, size)


def absent_assignee(server: LiveServer, engine: Engine, appeals: int) -> tuple[list[int], str]:
    """``appeals`` appeals at noon, and the employee who got the first one made absent that day
    in the draft: the draft moves that employee's appeals to someone else."""
    ids = [add_appeal(engine, received_at=NOON + timedelta(minutes=i)) for i in range(appeals)]
    with session_scope(engine, read_only=True) as s:
        first = s.get(Appeal, ids[0])
        assert first is not None
        decision = compile_files(FILES, version=1).decide(
            appeal_input(first), now=NOON, state=MemoryAssignmentState()
        )
    assert decision.assignee is not None
    who = decision.assignee.id
    editor = login(server, "editor")
    saved = editor.post(
        "/ui/rules/draft/employees/save", data=employee_form(editor, who, absences=ABSENT_DAY)
    )
    assert saved.status_code == 303, saved.text
    return ids, who


@pytest.fixture
def statements(ui_engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(ui_engine, "before_cursor_execute", record)
    yield seen
    event.remove(ui_engine, "before_cursor_execute", record)


def test_progress_is_polled_to_a_result_with_both_traces(
    ui_server: LiveServer, ui_engine: Engine, statements: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ids, who = absent_assignee(ui_server, ui_engine, 6)
    monkeypatch.setattr(draft_runs, "CHUNK", 2)
    gate = threading.Event()
    real_rows_after = routing_sample.rows_after

    def second_chunk_waits(session: Any, window: Any, after_id: int, limit: int) -> Any:
        if after_id >= window.first_id:  # the first chunk is decided: hold the second
            assert gate.wait(30)
        return real_rows_after(session, window, after_id, limit)

    monkeypatch.setattr(routing_sample, "rows_after", second_chunk_waits)
    client = login(ui_server, "editor")
    first, token = start(client)
    assert 'id="draft-test"' not in first.text  # the start does not wait for the result
    deadline = time.monotonic() + 30
    progress = poll(client, token).text
    while _number(progress, "draft-test-done") != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        progress = poll(client, token).text
    assert _number(progress, "draft-test-done") == 2, progress  # "2 of 6", while it runs
    assert _number(progress, "draft-test-total") == len(ids)
    assert "<progress" in progress and 'hx-trigger="every 500ms"' in progress
    gate.set()
    result = until_done(client, token)

    assert _number(result, "changed-count") and _number(result, "changed-count") >= 1
    assert f"({who})" in result.split('id="assignee-changes"')[1].split("</table>")[0]
    changed = result.split('id="changed-appeals"')[1].split("</table>")[0]
    assert f"#{ids[0]}" in changed
    row = changed.split('<tr class="changed">')[1].split("</tr>")[0]
    before, after = row.split('class="trace"')[1:]
    assert "отсутствует" not in before and f"({who})" in after and "отсутствует" in after
    # Routing columns only, chunk by chunk: never the stored traces of 20,000 appeals.
    reads = [q for q in statements if "FROM appeals" in q and "WHERE appeals.id > " in q]
    assert len(reads) == 3, reads  # 6 appeals, 2 per chunk
    assert not [q for q in reads if "appeals.trace" in q or "appeals.target" in q]


@SQLITE_ONLY
def test_a_poll_needs_the_role_the_csrf_token_and_the_owner(
    ui_server: LiveServer, ui_engine: Engine
) -> None:
    absent_assignee(ui_server, ui_engine, 2)
    editor = login(ui_server, "editor")
    _, token = start(editor)
    reviewer = login(ui_server, "reviewer")  # reads the rules, may not test a draft
    assert poll(reviewer, token).status_code == 403
    no_csrf = editor.post(f"/ui/rules/draft/test/{token}", data={"size": "1000"})
    assert no_csrf.status_code == 403
    admin = login(ui_server, "admin")  # may test drafts, but this run is the editor's
    assert poll(admin, token).status_code == 404
    assert poll(editor, "short").status_code == 404
    assert 'id="draft-test"' in until_done(editor, token)


@SQLITE_ONLY
def test_a_token_started_by_another_web_process_is_taken_up_here(
    ui_server: LiveServer, ui_engine: Engine
) -> None:
    """compose runs two web processes; a poll that reaches the one that did not start the test
    runs the same test there instead of failing."""
    ids, who = absent_assignee(ui_server, ui_engine, 3)
    editor = login(ui_server, "editor")
    elsewhere = secrets.token_urlsafe(24)
    assert draft_runs.get(elsewhere) is None
    result = until_done(editor, elsewhere)
    assert f"#{ids[0]}" in result.split('id="changed-appeals"')[1]
    assert f"({who})" in result


@SQLITE_ONLY
def test_without_a_draft_the_start_says_so(ui_server: LiveServer) -> None:
    editor = login(ui_server, "editor")
    r = editor.post("/ui/rules/draft/test", data={"csrf_token": editor.csrf, "size": "1000"})  # type: ignore[attr-defined]
    assert r.status_code == 409 and "нужны черновик и действующая версия" in r.text
