"""The structured rule editor without a browser or a database: rows <-> rules.yaml, cities,
targets, and where the checker's messages land."""

from __future__ import annotations

import difflib
from typing import Any

import pytest

from hub.routing.parse_rules import ACTIONS, CONDITIONS
from hub.rules_io import read_dir
from hub.ui import dir_forms, rule_form
from hub.ui.dir_yaml import SECTIONS, YamlDoc, parse_yaml_text
from hub.ui.rule_kinds import ACTION_KINDS, CONDITION_KINDS, WORD_KEYS, Row, read_row
from tests.ui.form_helpers import entity_form
from tests.ui.helpers import SAMPLE

FILES = read_dir(SAMPLE)


def changed_lines(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]


def save(section: str, key: str, change: Any = None, text: str | None = None) -> tuple[str, dict]:
    """An entity shown in the form, ``change``d like an admin would, and saved back."""
    text = FILES[SECTIONS[section].file] if text is None else text
    doc = YamlDoc(text, SECTIONS[section])
    entity = doc.get(key)
    form = entity_form(section, entity)
    if change:
        change(form)
    specs = dir_forms.specs_for(section, entity)
    entity, errors = dir_forms.apply(entity, specs, form)
    return (text if errors else doc.replaced(key, entity)), errors


def row_key(form: dict[str, str], part: str, code: str) -> str:
    """The input prefix of the first ``part`` row showing ``code``."""
    return next(k[: -len("field")] for k, v in form.items() if k.startswith(part) and v == code)


class TestRoundTrip:
    @pytest.mark.parametrize("section", ["rules", "regions", "departments", "filters"])
    def test_every_sample_entity_saved_unedited_keeps_every_byte(self, section: str) -> None:
        text = FILES[SECTIONS[section].file]
        for key in YamlDoc(text, SECTIONS[section]).ids():
            new, errors = save(section, key)
            assert errors == {} and new == text, key

    def test_every_sample_rule_is_shown_as_rows_without_yaml(self) -> None:
        doc = YamlDoc(FILES["rules.yaml"], SECTIONS["rules"])
        for key in doc.ids():
            for part in rule_form.PARTS:
                block = rule_form.block_of(part, doc.get(key).get(part))
                assert block.expert == "", (key, part)

    def test_the_rows_cover_every_condition_and_action_of_the_model(self) -> None:
        when = {k.code.partition(".")[0] for k in CONDITION_KINDS} | set(WORD_KEYS.values())
        then = {k.code.partition(".")[0] for k in ACTION_KINDS}
        assert when == set(CONDITIONS)
        assert then == set(ACTIONS)

    def test_what_rows_cannot_show_stays_in_the_expert_box_and_round_trips(self) -> None:
        rule = (
            "  - id: odd\n"
            "    when: {kind: call, rating: {min: 1, max: 2}, kind_of: x}\n"
            "    then: {topic: other, stop: false}\n"
        )
        text = FILES["rules.yaml"] + "\n" + rule
        block = rule_form.block_of("when", YamlDoc(text, SECTIONS["rules"]).get("odd")["when"])
        assert [r.code for r in block.rows] == ["kind"]
        assert parse_yaml_text(block.expert) == {"rating": {"min": 1, "max": 2}, "kind_of": "x"}
        new, errors = save("rules", "odd", text=text)
        assert errors == {} and new == text


class TestEditing:
    def test_a_new_condition_row_changes_that_rule_line_only(self) -> None:
        def add(form: dict[str, str]) -> None:
            form.update({"when-rnew-field": "channel", "when-rnew-picked": "vk\ntelegram"})

        new, errors = save("rules", "vacancy", add)
        assert errors == {}
        assert changed_lines(FILES["rules.yaml"], new) == [
            "-    when: {topic: vacancy}",
            "+    when: {topic: vacancy, channel: [vk, telegram]}",
        ]

    def test_changed_values_keep_quotes_and_unchanged_ones_keep_their_node(self) -> None:
        def change(form: dict[str, str]) -> None:
            form[row_key(form, "when", "fields") + "text"] = "9"
            target = row_key(form, "then", "topic")
            form[target + "picked"] = "gratitude"

        new, errors = save("rules", "ivr-quality", change)
        assert errors == {}
        assert changed_lines(FILES["rules.yaml"], new) == [
            '-    when: {kind: call, fields: {ivr_choice: "1"}}',
            "-    then: {topic: complaint_quality}",
            '+    when: {kind: call, fields: {ivr_choice: "9"}}',
            "+    then: {topic: gratitude}",
        ]

    def test_yaml11_strings_stay_strings(self) -> None:
        def tag(form: dict[str, str]) -> None:
            form.update({"then-rnew-field": "tags", "then-rnew-text": "yes"})

        new, errors = save("rules", "ivr-quality", tag)
        assert errors == {}
        assert changed_lines(FILES["rules.yaml"], new)[1] == (
            "+    then: {topic: complaint_quality, tags: ['yes']}"
        )

    def test_picked_values_keep_their_order_and_a_word_operator_renames_the_key(self) -> None:
        def change(form: dict[str, str]) -> None:
            topic = row_key(form, "when", "topic")
            form[topic + "picked"] = (
                "complaint_quality\ncomplaint_staff\nprice_mismatch\nrent\nvacancy"
            )

        new, errors = save("rules", "unknown-region-regional-topic", change)
        assert errors == {}
        assert changed_lines(FILES["rules.yaml"], new)[1] == (
            "+      topic: [complaint_staff, complaint_quality, price_mismatch, rent, vacancy]"
        )
        new, errors = save(
            "rules",
            "urgent-health",
            lambda f: f.update({row_key(f, "when", "words") + "op": "all"}),
        )
        assert errors == {}
        assert changed_lines(FILES["rules.yaml"], new)[1].startswith("+    when: {all_words: [")

    @pytest.mark.parametrize(
        ("part", "row", "error"),
        [
            ("when", Row("a", "regex", text="(unclosed"), "не компилируется"),
            ("when", Row("a", "time", low="22:00"), "укажите время"),
            ("when", Row("a", "rating", low="4", high="2"), "больше"),
            ("when", Row("a", "fields", op="equals", text="1"), "имя поля"),
            ("when", Row("a", "", text="x"), "выберите условие"),
            ("then", Row("a", "target", pipeline="два"), "целое"),
            ("then", Row("a", "filter"), "причину"),
        ],
    )
    def test_a_row_that_cannot_be_read_says_why(self, part: str, row: Row, error: str) -> None:
        assert error in read_row(part, row)[2]

    def test_row_errors_land_on_their_row(self) -> None:
        form = {
            "when-ra-field": "channel", "when-ra-picked": "vk",
            "when-rb-field": "channel", "when-rb-picked": "ok",
            "then-rc-field": "assign.pool", "then-rc-picked": "hotline",
            "then-rd-field": "assign.employee", "then-rd-picked": "hot-002",
        }  # fmt: skip
        assert list(rule_form.read_part("when", form, None)[1]) == ["when-rb"]
        assert list(rule_form.read_part("then", form, None)[1]) == ["then-rd"]
        assert list(rule_form.read_part("then", {}, None)[1]) == ["then"]


class TestWidgets:
    def test_a_city_added_and_one_marked_context_change_only_the_list(self) -> None:
        def change(form: dict[str, str]) -> None:
            cities = form["cities"].replace("Троицк", "Новая Москва").splitlines()
            form["cities"] = "\n".join(c for c in cities if c != "Щербинка")
            form["cities-context"] = "Щербинка"

        new, errors = save("regions", "moscow", change)
        assert errors == {}
        assert changed_lines(FILES["regions.yaml"], new) == [
            "-    cities: [Москва, Зеленоград, Троицк, Щербинка]",
            "+    cities: [Москва, Зеленоград, Новая Москва, {name: Щербинка, context: true}]",
        ]

    def test_a_target_stage_changes_in_place(self) -> None:
        new, errors = save(
            "departments", "hr", lambda f: f.update({"target-stage": "C2:UC_INTERVIEW"})
        )
        assert errors == {}
        assert changed_lines(FILES["departments.yaml"], new) == [
            '-    target: {entity: deal, pipeline: 2, stage: "C2:NEW"}',
            '+    target: {entity: deal, pipeline: 2, stage: "C2:UC_INTERVIEW"}',
        ]

    def test_a_value_no_widget_can_show_is_a_yaml_box(self) -> None:
        region = {"name": "X", "cities": [{"name": "Y", "population": 5}]}
        department = {"name": "X", "target": {"entity": "deal", "pipeline": "два"}}
        assert dir_forms.specs_for("regions", region)[3].kind == "yaml"
        assert dir_forms.specs_for("departments", department)[2].kind == "yaml"
        assert dir_forms.specs_for("departments", {"name": "X"})[2].kind == "target"


class TestPlacing:
    BLOCKS = {
        "when": rule_form.Block("when", [Row("a", "topic", picked=["vacancy"]),
                                         Row("b", "region", picked=["atlantis"]),
                                         Row("c", "rating", low="1", high="2")]),
        "then": rule_form.Block("then", [Row("d", "assign.pool", picked=["nobody"]),
                                         Row("e", "target", entity="deal", pipeline="2",
                                             stage="C2:NOPE")], "tags: [x]"),
    }  # fmt: skip

    @pytest.mark.parametrize(
        ("message", "where"),
        [
            ("правило «r»: неизвестный регион «atlantis»", "when-rb"),
            ("правило «r»: then: неизвестный пул «nobody»", "then-rd"),
            ("стадии «C2:NOPE» нет в воронке 2 (bitrix24.yaml)", "then-re"),
            ("правило «r»: у лида нет воронки (pipeline)", "then-re"),
            ("правило «r»: никогда не сработает: рейтинг 1–2 вне 1–5", "when-rc"),
            ("правило «r»: then: неизвестный ключ «ta»", None),
            ("правило «r»: неизвестный ключ «tags»", "then-yaml"),
        ],
    )
    def test_a_message_goes_to_the_row_it_is_about(self, message: str, where: str | None) -> None:
        preferred = "then" if "then" in message or "стади" in message else "when"
        assert rule_form.locate(message, self.BLOCKS, preferred) == where

    def test_target_messages_go_to_their_input(self) -> None:
        assert rule_form.target_input("отдел «hr»: стадии «X» нет в воронке 2") == "stage"
        assert rule_form.target_input("отдел «hr»: воронки 9 нет в bitrix24.yaml") == "pipeline"
