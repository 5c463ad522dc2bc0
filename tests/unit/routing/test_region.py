"""Region steps in their order: source store, explicit field, phone, text; unknown stays unknown."""

from __future__ import annotations

import pytest

from tests.unit.routing.helpers import compiled, decide

RS = compiled()


def region_of(text: str = "", **kw: object) -> tuple[str | None, str | None, str]:
    decision = decide(RS, text, **kw)  # type: ignore[arg-type]
    step = next(t for t in decision.trace if t.step == "region")
    return decision.region, step.rule, step.message


class TestSource:
    def test_store_card(self) -> None:
        region, method, message = region_of("Всё плохо", channel="twogis", source="2gis-1003")
        assert (region, method) == ("samara", "source")
        assert "магазину 1003" in message and "Тольятти" in message

    def test_store_community(self) -> None:
        assert region_of(channel="vk", source="club77")[:2] == ("samara", "source")

    def test_regional_community(self) -> None:
        region, method, message = region_of(channel="vk", source="club1")
        assert (region, method) == ("moscow", "source")
        assert "закреплён за регионом" in message

    def test_dialed_line_of_a_store(self) -> None:
        region, method, message = region_of(
            kind="call", channel="mango", source="pbx", fields={"line": "8 843 200 00 04"}
        )
        assert (region, method) == ("tatarstan", "source")
        assert "линия +78432000004" in message

    def test_source_beats_everything_else(self) -> None:
        region = region_of(
            "Я из Казани", channel="twogis", source="2gis-1002", phone="+7 495 000 00 00"
        )[0]
        assert region == "samara"


class TestExplicitField:
    def test_city_field(self) -> None:
        region, method, message = region_of(fields={"city": "Набережные Челны"})
        assert (region, method) == ("tatarstan", "field")
        assert "city" in message

    def test_region_code_in_field(self) -> None:
        assert region_of(fields={"city": "samara"})[0] == "samara"

    def test_ivr_choice(self) -> None:
        assert region_of(kind="call", fields={"ivr_region": "2"})[:2] == ("samara", "field")

    def test_field_beats_phone(self) -> None:
        assert region_of(fields={"city": "Самара"}, phone="+7 843 111 22 33")[0] == "samara"

    def test_unrecognised_value_is_noted_and_next_step_runs(self) -> None:
        region, method, message = region_of(fields={"city": "Урюпинск"}, phone="8 843 111-22-33")
        assert (region, method) == ("tatarstan", "phone")


class TestPhone:
    @pytest.mark.parametrize(
        ("phone", "region"),
        [
            ("+7 (495) 123-45-67", "moscow"),
            ("8 499 123 45 67", "moscow"),
            ("8(846)2223344", "samara"),
            ("8-8482-22-33-44", "samara"),
            ("+7 8552 11 22 33", "tatarstan"),
        ],
    )
    def test_area_code(self, phone: str, region: str) -> None:
        assert region_of(phone=phone)[:2] == (region, "phone")

    def test_mobile_gives_no_region(self) -> None:
        region, method, message = region_of("Добрый день", phone="+7 916 123-45-67")
        assert region is None and method is None
        assert "мобильный" in message

    def test_phone_in_text(self) -> None:
        region, method, message = region_of("перезвоните 8 (831) 222-33-44")
        assert (region, method) == ("nizhny", "phone")
        assert "номеру в тексте" in message

    def test_unknown_area_code(self) -> None:
        region, _, message = region_of(phone="+7 (351) 222-33-44")
        assert region is None
        assert "не из нашего справочника" in message


class TestText:
    @pytest.mark.parametrize(
        ("text", "region"),
        [
            ("в Казани", "tatarstan"),
            ("из Нижнего Новгорода", "nizhny"),
            ("по Самаре", "samara"),
            ("живу в ТОЛЬЯТТИ", "samara"),
            ("Набережных Челнах", "tatarstan"),
            ("Республика Татарстан", "tatarstan"),
            ("Татарстана", "tatarstan"),
            ("в зеленограде", "moscow"),
        ],
    )
    def test_city_in_any_form(self, text: str, region: str) -> None:
        assert region_of(text)[:2] == (region, "text")

    def test_ambiguous_city_needs_a_preposition(self) -> None:
        assert region_of("пишу из Бора")[0] == "nizhny"
        assert region_of("сосновый бор за окном")[0] is None
        assert region_of("Отрадный день")[0] is None
        assert region_of("г. Отрадный")[0] == "samara"

    def test_two_regions_are_ambiguous_not_guessed(self) -> None:
        region, _, message = region_of("Переехала из Самары в Казань")
        assert region is None
        assert "разных регионов" in message

    def test_store_address_unique_in_one_region(self) -> None:
        region, method, message = region_of("в магазине на Победы 7а обсчитали")
        assert (region, method) == ("samara", "text")
        assert "1003" in message

    def test_address_in_two_regions_narrowed_by_city(self) -> None:
        assert region_of("магазин на ул. Ленина, д. 15")[0] is None
        region, _, message = region_of("магазин на Ленина 15 в Самаре")
        assert region == "samara"
        assert "1002" in message

    def test_store_number(self) -> None:
        region, _, message = region_of("в магазине №1004 грязно")
        assert region == "tatarstan" and "1004" in message

    def test_nothing_found_says_why_for_each_step(self) -> None:
        region, method, message = region_of("Добрый день", channel="vk", source="club9")
        assert region is None and method is None
        assert "не привязан к магазину" in message
        assert "телефона нет" in message
        assert "не найден" in message
