"""The directory editor over HTTP (forms on SQLite; what publishes or routes on both backends):
spreadsheet import, test the draft, try a text, blacklist from an appeal."""

from __future__ import annotations

import difflib
import re
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Appeal, AuditEntry, RuleSetState, RuleSetVersion
from hub.pipeline import appeal_input
from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.rules_io import read_dir
from hub.ui import dir_csv
from tests.conftest import LiveServer
from tests.helpers import count
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import NOON, SAMPLE, add_appeal, login

FILES = read_dir(SAMPLE)


def versions(engine: Engine) -> list[RuleSetVersion]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(RuleSetVersion).order_by(RuleSetVersion.id)).scalars())


def employee_form(client: httpx.Client, emp: str, **changes: str) -> dict[str, str]:
    record = dir_csv.CsvDoc(FILES["employees.csv"]).find(emp)
    assert record is not None
    return {"csrf_token": client.csrf, "_key": emp, **record.cells, **changes}  # type: ignore[attr-defined]


def field_block(html: str, name: str) -> str:
    return html.split(f'data-field="{name}"')[1].split("data-field=")[0]


def changed(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]


class TestEmployeeForm:
    def test_an_error_shows_next_to_its_field_and_nothing_is_stored(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        r = client.post(
            "/ui/rules/draft/employees/save",
            data=employee_form(client, "hr-002", hours="пн-пт 25:00-18:00", capacity="много"),
        )
        assert r.status_code == 422
        assert "часы работы" in field_block(r.text, "hours")
        assert "capacity" in field_block(r.text, "capacity")
        assert "часы работы" not in field_block(r.text, "name")
        assert len(versions(ui_sqlite_engine)) == 1  # no draft was left behind

    def test_a_valid_change_goes_into_a_draft_as_one_line(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        r = client.post(
            "/ui/rules/draft/employees/save",
            data=employee_form(client, "hr-002", absences="2025-11-12"),
        )
        assert r.status_code == 303
        published, draft = versions(ui_sqlite_engine)
        assert draft.state == RuleSetState.draft and draft.created_by == "editor"
        assert {k for k in draft.files if draft.files[k] != published.files[k]} == {"employees.csv"}
        lines = changed(published.files["employees.csv"], draft.files["employees.csv"])
        assert len(lines) == 2 and lines[1].startswith("+hr-002,") and "2025-11-12" in lines[1]
        with session_scope(ui_sqlite_engine, read_only=True) as s:
            entry = s.execute(
                select(AuditEntry).where(AuditEntry.action == "rules.draft.update")
            ).scalar_one()
        assert entry.actor == "editor" and "2025-11-12" in entry.details["after"]
        assert "2025-11-12" not in entry.details["before"]


class TestYamlEntities:
    def test_unknown_pool_in_a_rule_is_reported_at_then(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        r = client.post(
            "/ui/rules/draft/rules/save",
            data={"csrf_token": client.csrf, "_key": "", "_new_key": "vip",  # type: ignore[attr-defined]
                  "title": "VIP", "when": "{words: [vip]}", "then": "{assign: {pool: nobody}}"},
        )  # fmt: skip
        assert r.status_code == 422
        # a plain "then" (scripts, the old form) is read as the expert YAML box, shown there
        assert "nobody" in field_block(r.text, "then-yaml")
        assert 'aria-invalid="true"' in field_block(r.text, "then-yaml")
        assert len(versions(ui_sqlite_engine)) == 1

    def test_a_new_rule_is_appended_and_can_move_up(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        r = client.post(
            "/ui/rules/draft/rules/save",
            data={"csrf_token": client.csrf, "_key": "", "_new_key": "vip",  # type: ignore[attr-defined]
                  "title": "VIP", "when": "{words: [vip]}", "then": "{department: hotline}"},
        )  # fmt: skip
        assert r.status_code == 303, r.text
        text = versions(ui_sqlite_engine)[-1].files["rules.yaml"]
        assert text.startswith(FILES["rules.yaml"].rstrip("\n"))
        assert text.endswith(
            "  - id: vip\n    title: VIP\n"
            "    when: {words: [vip]}\n    then: {department: hotline}\n"
        )
        r = client.post(
            "/ui/rules/draft/rules/move",
            data={"csrf_token": client.csrf, "key": "vip", "delta": "-1"},  # type: ignore[attr-defined]
        )
        assert r.status_code == 303
        ids = re.findall(
            r"^  - id: (\S+)", versions(ui_sqlite_engine)[-1].files["rules.yaml"], re.M
        )
        assert ids[-2:] == ["vip", "other"]

    def test_deleting_an_employee_a_pool_needs_is_refused(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "admin")
        r = client.post(
            "/ui/rules/draft/employees/delete",
            data={"csrf_token": client.csrf, "key": "hot-002"},  # type: ignore[attr-defined]
        )
        assert r.status_code == 422 and "hot-002" in r.text
        assert len(versions(ui_sqlite_engine)) == 1


class TestPublishDiffRestore:
    def test_publish_with_comment_then_restore_in_one_click(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        client = login(ui_server, "editor")
        client.post(
            "/ui/rules/draft/employees/save",
            data=employee_form(client, "hr-003", capacity="7"),
        )
        r = client.post(
            "/ui/rules/draft/publish",
            data={"csrf_token": client.csrf, "comment": "лимит hr-003"},  # type: ignore[attr-defined]
        )
        assert r.status_code == 303
        v1, v2 = versions(ui_engine)
        assert (v1.state, v2.state, v2.note, v2.published_by) == (
            "superseded", "published", "лимит hr-003", "editor",
        )  # fmt: skip
        diff = client.get("/ui/rules/diff", params={"a": 1, "b": 2})
        assert diff.status_code == 200 and "employees.csv" in diff.text
        assert "rules.yaml" not in diff.text.split("<h3>", 1)[1]
        r = client.post(
            "/ui/rules/versions/1/restore",
            data={"csrf_token": client.csrf, "publish_now": "true"},  # type: ignore[attr-defined]
        )
        assert r.status_code == 303
        v3 = versions(ui_engine)[-1]
        assert v3.state == "published" and v3.files == v1.files
        assert versions(ui_engine)[1].state == "superseded"

    def test_a_raw_file_with_a_yaml_error_is_not_saved(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "admin")
        bad = FILES["ruleset.yaml"] + "\nfallback: [oops\n"
        r = client.post(
            "/ui/rules/draft/files",
            data={"csrf_token": client.csrf, "name": "ruleset.yaml", "text": bad},  # type: ignore[attr-defined]
        )
        assert r.status_code == 422 and "YAML" in r.text
        good = FILES["ruleset.yaml"].replace("topic_min_score: 2", "topic_min_score: 3")
        r = client.post(
            "/ui/rules/draft/files",
            data={"csrf_token": client.csrf, "name": "ruleset.yaml", "text": good},  # type: ignore[attr-defined]
        )
        assert r.status_code == 303
        assert versions(ui_sqlite_engine)[-1].files["ruleset.yaml"] == good


class TestSpreadsheets:
    def test_a_bad_stores_csv_shows_the_error_at_its_line(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        lines = FILES["stores.csv"].splitlines(keepends=True)
        lines[4] = lines[4].replace(",moscow,", ",atlantis,", 1)
        r = client.post(
            "/ui/rules/draft/stores/import",
            data={"csrf_token": client.csrf},  # type: ignore[attr-defined]
            files={"upload": ("stores.csv", "".join(lines).encode(), "text/csv")},
        )
        assert r.status_code == 422
        row = r.text.split('data-line="5"')[1].split("</tr>")[0]
        assert "line-error" in r.text.split('data-line="5"')[0][-40:]
        assert "неизвестный регион «atlantis»" in row
        assert len(versions(ui_sqlite_engine)) == 1

    def test_xlsx_export_import_round_trip(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        csv = client.get("/ui/rules/draft/employees/export.csv")
        assert csv.content == FILES["employees.csv"].encode()
        xlsx = client.get("/ui/rules/draft/employees/export.xlsx")
        assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
        r = client.post(
            "/ui/rules/draft/employees/import",
            data={"csrf_token": client.csrf},  # type: ignore[attr-defined]
            files={"upload": ("employees.xlsx", xlsx.content, "application/octet-stream")},
        )
        assert r.status_code == 303, r.text
        draft = versions(ui_sqlite_engine)[-1]
        before = dir_csv.CsvDoc(FILES["employees.csv"])
        after = dir_csv.CsvDoc(draft.files["employees.csv"])
        assert [x.cells for x in after.rows()] == [x.cells for x in before.rows()]


class TestDraftCheck:
    def test_an_absence_moves_appeals_in_test_the_draft(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        appeal_ids = [
            add_appeal(ui_engine, received_at=NOON + timedelta(minutes=i)) for i in range(6)
        ]
        rules = compile_files(FILES, version=1)
        with session_scope(ui_engine, read_only=True) as s:
            first = s.get(Appeal, appeal_ids[0])
            assert first is not None
            decision = rules.decide(appeal_input(first), now=NOON, state=MemoryAssignmentState())
        assert decision.assignee is not None
        who = decision.assignee.id
        client = login(ui_server, "editor")
        r = client.post(
            "/ui/rules/draft/employees/save", data=employee_form(client, who, absences="2025-11-12")
        )
        assert r.status_code == 303
        from tests.integration.test_ui_draft_test import run_draft_test

        result = run_draft_test(client, 1000)  # started, then polled to its result
        changed_count = int(re.search(r'id="changed-count">(\d+)<', result).group(1))  # type: ignore[union-attr]
        assert changed_count >= 1
        table = result.split('id="assignee-changes"')[1].split("</table>")[0]
        assert f"({who})" in table
        assert f"#{appeal_ids[0]}" in result.split('id="changed-appeals"')[1]

    def test_try_a_text(self, ui_sqlite_server: LiveServer) -> None:
        client = login(ui_sqlite_server, "reviewer")
        r = client.post(
            "/ui/rules/try",
            data={"csrf_token": client.csrf, "text": "Хочу устроиться кассиром в Казани",  # type: ignore[attr-defined]
                  "channel": "tilda", "kind": "form"},
        )  # fmt: skip
        assert r.status_code == 200
        assert "Вакансии и трудоустройство" in r.text and "Татарстан" in r.text


class TestAppealActions:
    def test_blacklist_publish_then_reroute_filters_the_author(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        appeal = add_appeal(ui_engine, author_phone="+79161112233", author_platform_id="id42")
        client = login(ui_server, "admin")
        r = client.post(
            f"/ui/appeals/{appeal}/blacklist",
            data={"csrf_token": client.csrf, "publish_now": "true"},  # type: ignore[attr-defined]
        )
        assert r.status_code == 303 and "blacklist-published" in r.headers["location"]
        v2 = versions(ui_engine)[-1]
        assert v2.state == "published"
        assert changed(FILES["filters.yaml"], v2.files["filters.yaml"]) == [
            '-    phones: ["+7 (900) 000-00-00", "8 999 111-22-33"]',
            '-    platform_ids: ["vk:id100000001", "ok:575000000001", "telegram:66600001"]',
            '+    phones: ["+7 (900) 000-00-00", "8 999 111-22-33", "+79161112233"]',
            "+    platform_ids: "
            '["vk:id100000001", "ok:575000000001", "telegram:66600001", "vk:id42"]',
        ]
        r = client.post(f"/ui/appeals/{appeal}/reroute", data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert r.status_code == 303
        with session_scope(ui_engine, read_only=True) as s:
            row = s.get(Appeal, appeal)
            assert row is not None
            assert (row.state, row.filtered_reason, row.rules_version) == (
                "filtered", "Отправитель в чёрном списке", v2.id,
            )  # fmt: skip
        assert count(ui_engine, AuditEntry, AuditEntry.action == "appeal.reroute") == 1
        page = client.get(f"/ui/appeals/{appeal}")
        assert "Отправитель в чёрном списке" in page.text.split('id="trace"')[1]
