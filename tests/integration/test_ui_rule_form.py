"""The structured rule editor over HTTP: rows added as htmx adds them, saved into the draft,
errors next to their row, and every sample entity saved untouched keeps every byte."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import RuleSetVersion
from hub.routing.compile import check_files
from hub.rules_io import read_dir
from hub.storage import rulesets
from hub.ui.dir_yaml import SECTIONS, YamlDoc
from tests.conftest import LiveServer
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.form_helpers import html_form
from tests.ui.helpers import SAMPLE, login

FILES = read_dir(SAMPLE)


def versions(engine: Engine) -> list[RuleSetVersion]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(RuleSetVersion).order_by(RuleSetVersion.id)).scalars())


def block(html: str, name: str) -> str:
    """The HTML of the element with ``data-field=name``, up to the next such element."""
    return html.split(f'data-field="{name}"')[1].split("data-field=")[0]


def row(html: str, name: str) -> str:
    """The HTML of one condition or action row."""
    return html.split(f'data-field="{name}"')[1].split('class="rule-row"')[0].split("</fieldset")[0]


def new_row(client: httpx.Client, part: str, field: str) -> str:
    """A row added and given its field the way the page's htmx does; its input prefix."""
    row = client.get("/ui/rules/draft/rules/row", params={"part": part})
    assert row.status_code == 200
    token = re.search(rf'name="{part}-r([0-9a-f]+)-field"', row.text).group(1)  # type: ignore[union-attr]
    prefix = f"{part}-r{token}-"
    changed = client.get(
        "/ui/rules/draft/rules/row",
        params={"part": part, "token": token, prefix + "field": field, prefix + "was": ""},
    )
    assert changed.status_code == 200 and f'value="{field}" selected' in changed.text
    return prefix


def post(client: httpx.Client, section: str, fields: list[tuple[str, str]]) -> httpx.Response:
    data: dict[str, list[str]] = {}
    for name, value in [("csrf_token", client.csrf), *fields]:  # type: ignore[attr-defined]
        data.setdefault(name, []).append(value)
    return client.post(f"/ui/rules/draft/{section}/save", data=data)


class TestCreate:
    def test_a_rule_with_two_conditions_and_two_actions(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        page = client.get("/ui/rules/draft/rules/edit")
        assert page.status_code == 200 and 'id="add-when"' in page.text
        kind, time = new_row(client, "when", "kind"), new_row(client, "when", "time")
        dept, pool = new_row(client, "then", "department"), new_row(client, "then", "assign.pool")
        r = post(client, "rules", [
            ("_key", ""), ("_new_key", "night-calls"), ("title", "Ночные звонки"),
            (kind + "field", "kind"), (kind + "picked", "call"), (kind + "picked", "review"),
            (time + "field", "time"), (time + "low", "22:00"), (time + "high", "08:00"),
            (dept + "field", "department"), (dept + "picked", "hotline"),
            (pool + "field", "assign.pool"), (pool + "picked", "triage"),
            ("when-yaml", ""), ("then-yaml", ""),
        ])  # fmt: skip
        assert r.status_code == 303, r.text
        draft = versions(ui_sqlite_engine)[-1]
        assert draft.files["rules.yaml"] == FILES["rules.yaml"] + (
            "\n  - id: night-calls\n    title: Ночные звонки\n"
            "    when: {kind: [call, review], time: 22:00-08:00}\n"
            "    then: {department: hotline, assign: {pool: triage}}\n"
        )
        model, problems = check_files(draft.files)
        assert not problems.errors
        rule = next(x for x in model.rules if x.id == "night-calls")
        assert [c.name for c in rule.conditions] == ["kind", "time"]
        assert (rule.actions.department, rule.actions.assign_pool) == ("hotline", "triage")
        listed = client.get("/ui/rules/draft/rules", params={"q": "night"})
        assert "night-calls" in listed.text and "Ночные звонки" in listed.text
        form = dict(html_form(client.get("/ui/rules/draft/rules/edit?key=night-calls").text))
        assert sorted(v for k, v in form.items() if k.endswith("-field")) == [
            "assign.pool", "department", "kind", "time",
        ]  # fmt: skip

    def test_a_changed_field_gets_the_inputs_it_needs(self, ui_sqlite_server: LiveServer) -> None:
        client = login(ui_sqlite_server, "reviewer")
        region = new_row(client, "when", "region")
        r = client.get(
            "/ui/rules/draft/rules/row",
            params={"part": "when", "token": region[6:-1], region + "field": "weekdays",
                    region + "was": "region", region + "picked": "moscow"},
        )  # fmt: skip
        assert f'name="{region}picked" value="сб"' in r.text and "moscow" not in r.text
        r = client.get(
            "/ui/rules/draft/rules/row",
            params={"part": "when", "token": region[6:-1], region + "field": "region",
                    region + "was": "region", region + "picked": "moscow"},
        )  # fmt: skip
        assert '<option value="moscow" selected>' in r.text and '"unknown"' in r.text
        assert client.get("/ui/rules/draft/rules/row", params={"part": "x"}).status_code == 404


class TestErrors:
    def test_each_error_is_shown_on_its_own_row_and_nothing_is_stored(
        self, ui_sqlite_server: LiveServer, ui_sqlite_engine: Engine
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        fields = [
            ("_key", ""), ("_new_key", "vip"), ("title", "VIP"),
            ("when-ra-field", "topic"), ("when-ra-picked", "vacancy"),
            ("when-rb-field", "kind"), ("when-rb-picked", "call"),
            ("then-rc-field", "department"), ("then-rc-picked", "hr"),
            ("then-rd-field", "target"), ("then-rd-entity", "deal"),
            ("then-rd-pipeline", "2"), ("then-rd-stage", "C2:NOPE"),
        ]  # fmt: skip
        r = post(client, "rules", fields)
        assert r.status_code == 422
        assert "стадии «C2:NOPE» нет в воронке 2" in row(r.text, "then-rd")
        assert 'aria-invalid="true"' in block(r.text, "then-rd-stage")
        for other in ("when-ra", "when-rb", "then-rc"):
            assert "field-error" not in row(r.text, other)
            assert 'aria-invalid="true"' not in row(r.text, other)
        assert 'value="C2:NOPE"' in r.text  # what was typed is shown again
        assert "раньше забирает" in block(r.text, "when")  # about all the conditions
        r = post(client, "rules", [*fields[:5], ("when-rb-field", "regex"),
                                   ("when-rb-text", "(оплат"), *fields[7:9]])  # fmt: skip
        assert r.status_code == 422
        assert "не компилируется" in row(r.text, "when-rb")
        assert 'aria-invalid="true"' in row(r.text, "when-rb")
        assert "field-error" not in row(r.text, "when-ra")
        assert len(versions(ui_sqlite_engine)) == 1

    def test_a_region_without_cities_and_a_bad_pipeline_are_refused_at_their_field(
        self, ui_sqlite_server: LiveServer
    ) -> None:
        client = login(ui_sqlite_server, "editor")
        page = client.get("/ui/rules/draft/regions/edit?key=tver")
        form = [
            (k, "" if k in ("cities", "cities-context") else v) for k, v in html_form(page.text)
        ]
        r = post(client, "regions", [f for f in form if f[0] != "csrf_token"])
        assert r.status_code == 422 and "хотя бы один город" in block(r.text, "cities")
        page = client.get("/ui/rules/draft/departments/edit?key=hr")
        form = [(k, "C9:NEW" if k == "target-stage" else v) for k, v in html_form(page.text)]
        r = post(client, "departments", [f for f in form if f[0] != "csrf_token"])
        assert r.status_code == 422
        assert "C9:NEW" in block(r.text, "target-stage")
        assert "field-error" not in block(r.text, "target-pipeline")


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("section", "limit"),
        [("rules", None), ("regions", 5), ("departments", None), ("filters", None)],
    )
    def test_every_sample_entity_saved_from_its_page_unchanged(
        self,
        section: str,
        limit: int | None,
        ui_sqlite_server: LiveServer,
        ui_sqlite_engine: Engine,
    ) -> None:
        """Every rule (regions: the first five; tests/ui/test_rule_form.py does them all)."""
        client = login(ui_sqlite_server, "editor")
        file = SECTIONS[section].file
        for key in YamlDoc(FILES[file], SECTIONS[section]).ids()[:limit]:
            page = client.get(f"/ui/rules/draft/{section}/edit", params={"key": key})
            fields = [f for f in html_form(page.text) if f[0] != "csrf_token"]
            r = post(client, section, fields)
            assert r.status_code == 303, (key, r.text[:2000])
        draft = versions(ui_sqlite_engine)[-1]
        assert draft.state == "draft" and draft.files[file] == FILES[file]
        with session_scope(ui_sqlite_engine, read_only=True) as s:
            _number, exported = rulesets.export_files(session=s, version_id=draft.id)
        assert exported == FILES  # what `clienthub rules export` writes
