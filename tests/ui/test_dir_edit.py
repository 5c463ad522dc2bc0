"""Editing one entity of the rule directory changes only its own lines (no database)."""

from __future__ import annotations

import difflib
import io

import pytest
from openpyxl import Workbook

from hub.rules_io import read_dir
from hub.ui import dir_csv, dir_forms
from hub.ui.dir_yaml import SECTIONS, YamlDoc, parse_yaml_text, styled
from tests.ui.form_helpers import entity_form
from tests.ui.helpers import SAMPLE

FILES = read_dir(SAMPLE)


def changed_lines(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]


class TestYamlDoc:
    @pytest.mark.parametrize("section", sorted(SECTIONS))
    def test_rewriting_every_entity_unchanged_keeps_every_byte(self, section: str) -> None:
        text = FILES[SECTIONS[section].file]
        doc = YamlDoc(text, SECTIONS[section])
        assert doc.ids()
        for key in doc.ids():
            assert doc.replaced(key, doc.get(key)) == text, key

    def test_editing_a_field_changes_that_line_only(self) -> None:
        text = FILES["pools.yaml"]
        doc = YamlDoc(text, SECTIONS["pools"])
        entity = doc.get("triage")
        specs = dir_forms.specs_for("pools", entity)
        form = {s.name: dir_forms.show(s, entity.get(s.name)) for s in specs}
        form["members"] = "hot-002, hot-003"
        entity, errors = dir_forms.apply(entity, specs, form)
        assert errors == {}
        assert changed_lines(text, doc.replaced("triage", entity)) == [
            "-    members: [hot-002, hot-003, hot-004, hot-005]",
            "+    members: [hot-002, hot-003]",
        ]

    def test_expert_yaml_keeps_flow_style_and_yaml11_strings(self) -> None:
        text = FILES["rules.yaml"]
        doc = YamlDoc(text, SECTIONS["rules"])
        entity = doc.get("ivr-quality")
        specs = dir_forms.specs_for("rules", entity)
        form = entity_form("rules", entity)
        form["then-yaml"] = "{tags: ['yes']}"  # what the rows above do not hold
        entity, errors = dir_forms.apply(entity, specs, form)
        assert errors == {}
        assert changed_lines(text, doc.replaced("ivr-quality", entity)) == [
            "-    then: {topic: complaint_quality}",
            # "yes" stays a string for PyYAML
            "+    then: {topic: complaint_quality, tags: ['yes']}",
        ]
        assert parse_yaml_text(form["then-yaml"]) == {"tags": ["yes"]}

    def test_append_move_and_remove(self) -> None:
        text = FILES["rules.yaml"]
        doc = YamlDoc(text, SECTIONS["rules"])
        first, second = doc.ids()[:2]
        moved = YamlDoc(doc.moved(second, -1), SECTIONS["rules"])
        assert moved.ids()[:2] == [second, first]
        new = styled({"id": "x-new", "title": "Новое", "then": {"topic": "other"}})
        appended = YamlDoc(doc.appended("x-new", new), SECTIONS["rules"])
        assert appended.ids()[-1] == "x-new"
        assert appended.get("x-new")["then"] == {"topic": "other"}
        removed = YamlDoc(appended.removed("x-new"), SECTIONS["rules"]).text
        assert removed == text

    def test_errors_map_to_the_field_by_line(self) -> None:
        doc = YamlDoc(FILES["rules.yaml"], SECTIONS["rules"])
        lines = doc.key_lines("vacancy")
        assert dir_forms.field_of_line(lines, lines["then"] + 1) == "then"
        assert dir_forms.field_of_line(lines, lines["when"]) == "when"


class TestForms:
    @pytest.mark.parametrize(
        ("kind", "raw", "value", "error"),
        [
            ("int", "3", 3, None),
            ("int", "три", None, "нужно целое число"),
            ("list", "a, b,\nc", ["a", "b", "c"], None),
            ("lines", "a, b\nc", ["a, b", "c"], None),
            ("words", "вакансия = 4\nищу работу", {"вакансия": 4, "ищу работу": 1}, None),
            ("yaml", "{a: [1", None, "ошибка YAML"),
        ],
    )
    def test_read(self, kind: str, raw: str, value: object, error: str | None) -> None:
        got, problem = dir_forms.read(dir_forms.F("x", kind, "x"), raw)
        assert got == value
        assert (problem is None) if error is None else (error in (problem or ""))

    def test_required_field(self) -> None:
        assert (
            dir_forms.read(dir_forms.F("x", "str", "x", required=True), " ")[1]
            == "обязательное поле"
        )


class TestCsvDoc:
    def test_replacing_a_row_keeps_the_others_bytes(self) -> None:
        text = FILES["employees.csv"]
        doc = dir_csv.CsvDoc(text)
        record = doc.find("hr-002")
        assert record is not None
        cells = {**record.cells, "absences": "2025-11-12"}
        new = doc.replaced("hr-002", cells)
        changed = changed_lines(text, new)
        assert len(changed) == 2 and "2025-11-12" in changed[1]
        assert dir_csv.CsvDoc(new).find("hr-002").cells["absences"] == "2025-11-12"  # type: ignore[union-attr]

    def test_semicolons_crlf_and_bom_survive(self) -> None:
        text = "\ufeffid;name;bitrix_user_id;department\r\na-1;Анна;5;hr\r\nb-2;Борис;6;hr\r\n"
        doc = dir_csv.CsvDoc(text)
        new = doc.replaced(
            "b-2", {"id": "b-2", "name": "Борис Б.", "bitrix_user_id": "6", "department": "hr"}
        )
        assert (
            new
            == "\ufeffid;name;bitrix_user_id;department\r\na-1;Анна;5;hr\r\nb-2;Борис Б.;6;hr\r\n"
        )
        assert doc.removed("a-1") == "\ufeffid;name;bitrix_user_id;department\r\nb-2;Борис;6;hr\r\n"

    def test_column_of_message(self) -> None:
        header = ["id", "name", "bitrix_user_id", "department", "hours", "absences", "regions"]
        assert dir_csv.column_of("сотрудник x: часы работы: не понимаю", header) == "hours"
        assert (
            dir_csv.column_of("сотрудник x: bitrix_user_id 5 уже у y", header) == "bitrix_user_id"
        )
        assert dir_csv.column_of("сотрудник x: неизвестный регион «q»", header) == "regions"

    def test_xlsx_round_trip_and_cp1251(self) -> None:
        doc = dir_csv.CsvDoc(FILES["stores.csv"])
        data = dir_csv.to_xlsx(doc, "stores")
        back = dir_csv.CsvDoc(dir_csv.upload_to_text("stores.xlsx", data))
        assert back.header == doc.header
        assert [r.cells for r in back.rows()] == [r.cells for r in doc.rows()]
        assert dir_csv.upload_to_text("s.csv", "id,Город\n1,Казань\n".encode("cp1251")).endswith(
            "Казань\n"
        )

    def test_xlsx_numbers_become_plain_text(self) -> None:
        book = Workbook()
        sheet = book.active
        sheet.append(["id", "twogis"])
        sheet.append([1001, 5452197270.0])
        out = io.BytesIO()
        book.save(out)
        assert dir_csv.upload_to_text("x.xlsx", out.getvalue()) == "id,twogis\n1001,5452197270\n"
