"""A store chosen by its id in an explicit field (a site form's «Магазин» list): the store and its
region, found in the "field" step before the named city, with a trace that says which field."""

from __future__ import annotations

import pytest

from hub.routing.compile import check_files
from hub.routing.engine import CompiledRuleSet
from tests.unit.routing.helpers import BASE, compiled, decide, files
from tests.unit.routing.test_sample_appeals import sample

RS = compiled()


def region_step(ruleset: CompiledRuleSet, text: str = "", **kw: object) -> tuple:
    decision = decide(ruleset, text, **kw)  # type: ignore[arg-type]
    step = next(t for t in decision.trace if t.step == "region")
    return decision.region, decision.store, step.rule, step.message, step.data


def with_store_fields(line: str) -> CompiledRuleSet:
    ruleset = BASE["ruleset.yaml"].replace(
        "line_fields: [line]\n", f"line_fields: [line]\n{line}\n"
    )
    assert line in ruleset
    return compiled(ruleset_yaml=ruleset)


@pytest.mark.parametrize("name", ["store", "store_id", "магазин", "Магазин", "STORE"])
def test_the_default_field_names_give_the_store_and_its_region(name: str) -> None:
    region, store, method, message, data = region_step(RS, fields={name: "1003"})
    assert (region, store, method) == ("samara", "1003", "field")
    assert message == (
        f"Регион «Самарская область» — по полю: в поле «{name}» выбран магазин 1003 "
        "(Тольятти, пр-т Победы, 7а)."
    )
    assert data == {"store": "1003", "field": name}


@pytest.mark.parametrize("value", ["1004", " 1004 ", "№1004", "№ 1004", "магазин 1004"])
def test_the_usual_spellings_of_a_store_number(value: str) -> None:
    assert region_step(RS, fields={"store": value})[:3] == ("tatarstan", "1004", "field")


def test_the_store_labels_the_deal_with_its_city() -> None:
    decision = decide(RS, fields={"store": "1003"})
    assert decision.labels["city"] == "Тольятти"
    assert decision.labels["region"] == "Самарская область"


def test_a_chosen_store_beats_a_named_city_and_the_phone() -> None:
    found = region_step(RS, fields={"city": "Казань", "store": "1002"}, phone="+7 495 123 45 67")
    assert found[:3] == ("samara", "1002", "field")


def test_the_source_store_still_comes_first() -> None:
    found = region_step(RS, channel="twogis", source="2gis-1004", fields={"store": "1002"})
    assert found[:3] == ("tatarstan", "1004", "source")


def test_an_unknown_store_is_noted_and_the_next_field_decides() -> None:
    region, store, method, message, _ = region_step(RS, fields={"store": "9999", "city": "Казань"})
    assert (region, store, method) == ("tatarstan", None, "field")
    assert "city" in message
    decision = decide(RS, fields={"store": "9999"})
    assert decision.region is None
    step = next(t for t in decision.trace if t.step == "region")
    assert "в поле «store» = «9999» нет магазина из справочника" in step.message


def test_field_names_are_configurable() -> None:
    custom = with_store_fields("store_fields: [shop_no, точка]")
    assert region_step(custom, fields={"shop_no": "1004"})[:3] == ("tatarstan", "1004", "field")
    assert region_step(custom, fields={"Точка": "1002"})[:2] == ("samara", "1002")
    # The defaults are replaced, not extended.
    assert region_step(custom, fields={"store": "1004"})[:2] == (None, None)


def test_an_empty_list_switches_the_store_field_off() -> None:
    off = with_store_fields("store_fields: []")
    assert region_step(off, fields={"store": "1004"})[:2] == (None, None)


def test_store_fields_is_read_from_ruleset_yaml_and_checked() -> None:
    model, problems = check_files(files(ruleset_yaml=BASE["ruleset.yaml"] + "store_fields: shop\n"))
    assert model.settings.store_fields == ["shop"] and not problems.errors
    _, problems = check_files(files(ruleset_yaml=BASE["ruleset.yaml"] + "store_fields: {a: 1}\n"))
    assert [p.message for p in problems.errors] == [
        "ruleset.yaml: «store_fields» должно быть списком"
    ]


def test_the_sample_directory_resolves_the_store_a_site_form_names() -> None:
    decision = decide(sample(), "Здравствуйте, хочу уточнить часы работы", channel="form",
                      source="site", kind="form", fields={"store": "1012"})  # fmt: skip
    assert (decision.region, decision.store) == ("moscow", "1012")
    assert decision.trace[0].rule == "field"
