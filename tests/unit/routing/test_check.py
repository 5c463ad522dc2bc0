"""`rules check`: every problem of a broken directory, each with file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli_rules import rules_app
from hub.routing.compile import RulesInvalid, check_files, compile_files
from hub.rules_io import read_dir, write_dir
from tests.unit.routing.helpers import BASE, files

SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"

BROKEN_RULES = """\
rules:
  - id: atlantis
    when: {region: atlantis}
    then: {tags: [x]}
  - id: rating-on-messages
    when: {kind: message, rating: "1-2"}
    then: {tags: [y]}
  - id: contradiction
    when: {all_words: [молоко], not_words: [молоко]}
    then: {tags: [y]}
  - id: catch-all
    then: {department: hotline, stop: true}
  - id: shadowed
    when: {channel: vk}
    then: {assign: {pool: nowhere}, colour: red}
  - id: atlantis
    when: {time: 10:00}
    then: {}
"""
BROKEN_EMPLOYEES = BASE["employees.csv"] + "ghost,Призрак,,hotline,,*,*,,,,\n"
BROKEN_STORES = BASE["stores.csv"] + '1002,samara,Сызрань,"ул. Мира, 1",,,,\n'
BROKEN_POOLS = """\
pools:
  a:
    members: [op1]
    fallback: [b]
  b:
    members: [op2]
    fallback: [a]
"""
BITRIX = """\
pipelines:
  - id: 0
    stages: [{id: NEW}]
  - id: 1
    stages: [{id: "C1:NEW"}]
lead_statuses: [{id: NEW}]
users: [{id: 10}, {id: 11}, {id: 12}, {id: 13}, {id: 14}, {id: 20}, {id: 21}]
"""


@pytest.fixture(scope="module")
def problems() -> list[str]:
    broken = files(
        rules_yaml=BROKEN_RULES,
        employees_csv=BROKEN_EMPLOYEES,
        stores_csv=BROKEN_STORES,
        pools_yaml=BROKEN_POOLS,
        bitrix24_yaml=BITRIX,
    )
    _model, found = check_files(broken)
    return [str(p) for p in found]


@pytest.mark.parametrize(
    "expected",
    [
        "rules.yaml:3: правило «atlantis»: неизвестный регион «atlantis»",
        "rules.yaml:5: правило «rating-on-messages»: никогда не сработает: рейтинг бывает только"
        " у отзывов",
        "rules.yaml:8: правило «contradiction»: никогда не сработает: слово «молоко» одновременно"
        " обязательно и запрещено",
        "rules.yaml:13: правило «shadowed»: никогда не сработает: правило «catch-all» (строка 11)"
        " раньше забирает",
        "rules.yaml:15: правило «shadowed»: then: неизвестный ключ «colour»",
        "rules.yaml:15: правило «shadowed»: then: неизвестный пул «nowhere»",
        "rules.yaml:16: правило «atlantis»: id повторяется (первое на строке 2)",
        "rules.yaml:17: правило «atlantis»: time: пишите время в кавычках",
        "rules.yaml:18: правило «atlantis»: then не содержит ни одного действия",
        "employees.csv:10: сотрудник ghost: нет bitrix_user_id",
        "stores.csv:6: id магазина «1002» повторяется (строка 3)",
        "pools.yaml:2: пул «a»: цикл резервных пулов a → b → a",
        "employees.csv:9: сотрудник qsam: пользователя 22 нет в bitrix24.yaml",
    ],
)
def test_problem_reported_with_file_and_line(problems: list[str], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems), "\n".join(problems)


def test_fallback_stage_missing_from_portal(problems: list[str]) -> None:
    assert "ruleset.yaml:12: стадии «UC_TRIAGE» нет в воронке 0 (bitrix24.yaml)" in problems


def test_yaml_syntax_error_line() -> None:
    broken = files(topics_yaml="topics:\n  vacancy:\n    words: [вакансия\n  other: {}\n")
    _model, found = check_files(broken)
    assert any(str(p).startswith("topics.yaml:4: ошибка синтаксиса YAML") for p in found), found


def test_missing_file_and_unknown_key() -> None:
    broken = files(
        regions_yaml=BASE["regions.yaml"].replace("    area_codes:", "    area_code:", 1)
    )
    del broken["filters.yaml"]
    found = [str(p) for p in check_files(broken)[1]]
    assert "filters.yaml:1: нет обязательного файла" in found
    assert any(
        p.startswith("regions.yaml:5: регион «moscow»: неизвестный ключ «area_code»") for p in found
    )


def test_region_table_problems() -> None:
    regions = (
        BASE["regions.yaml"]
        .replace("Europe/Samara", "Europe/Samarkand")
        .replace('area_codes: ["843", "855"]', 'area_codes: ["846", "9"]')
    )
    found = [str(p) for p in check_files(files(regions_yaml=regions))[1]]
    assert any("неизвестный пояс «Europe/Samarkand»" in p for p in found)
    assert any("код 846 уже у региона «samara»" in p for p in found)
    assert any("код «9» — 3–5 цифр" in p for p in found)


def test_store_city_must_be_in_its_region() -> None:
    stores = BASE["stores.csv"] + '1009,moscow,Казань,"ул. Мира, 1",,,,\n'
    found = [str(p) for p in check_files(files(stores_csv=stores))[1]]
    assert "stores.csv:6: магазин 1009: города «Казань» нет в регионе moscow" in found


def test_compile_refuses_errors() -> None:
    with pytest.raises(RulesInvalid) as info:
        compile_files(files(rules_yaml=BROKEN_RULES))
    assert all(p.level == "error" for p in info.value.problems)


def test_sample_has_no_errors() -> None:
    _model, found = check_files(read_dir(SAMPLE))
    assert found.errors == []


class TestCheckCommand:
    def test_clean_directory(self) -> None:
        result = CliRunner().invoke(rules_app, ["check", str(SAMPLE)])
        assert result.exit_code == 0, result.output
        assert "ошибок нет" in result.output

    def test_broken_directory_prints_every_error_and_exits_1(self, tmp_path: Path) -> None:
        write_dir(tmp_path, files(rules_yaml=BROKEN_RULES))
        result = CliRunner().invoke(rules_app, ["check", str(tmp_path)])
        assert result.exit_code == 1
        assert "rules.yaml:3: правило «atlantis»: неизвестный регион «atlantis»" in result.output

    def test_missing_directory_exits_2(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(rules_app, ["check", str(tmp_path / "nope")])
        assert result.exit_code == 2
