"""Each rule condition, alone, on the small test directory: fires when it should, not otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.routing.helpers import WEDNESDAY_11_MSK, decide, rule_ids, rules


def fires(condition: str, text: str = "", **kw: object) -> bool:
    ruleset = rules(f"  - id: probe\n    when: {condition}\n    then: {{tags: [probe]}}\n")
    return "probe" in rule_ids(decide(ruleset, text, **kw))  # type: ignore[arg-type]


class TestChannelSourceKind:
    def test_channel(self) -> None:
        assert fires("{channel: telegram}", channel="telegram")
        assert not fires("{channel: telegram}", channel="vk")

    def test_source_bare_or_with_channel(self) -> None:
        assert fires("{source: club5}", source="club5")
        assert fires('{source: "vk:club5"}', channel="vk", source="club5")
        assert not fires('{source: "telegram:club5"}', channel="vk", source="club5")

    def test_kind(self) -> None:
        assert fires("{kind: [review, call]}", kind="call")
        assert not fires("{kind: review}", kind="comment")


class TestWords:
    @pytest.mark.parametrize(
        "text", ["Есть вакансии?", "нет вакансий", "ВАКАНСИЯМИ", "о вакансии кассира"]
    )
    def test_any_inflection(self, text: str) -> None:
        assert fires("{words: [вакансия]}", text)

    def test_word_absent(self) -> None:
        assert not fires("{words: [вакансия]}", "хочу на работу")

    def test_phrase_needs_consecutive_words(self) -> None:
        assert fires('{words: ["срок годности"]}', "Истёк СРОК ГОДНОСТИ у йогурта")
        assert not fires('{words: ["срок годности"]}', "срок ответа и годности")

    def test_all_words(self) -> None:
        assert fires("{all_words: [молоко, кислый]}", "молоко оказалось кислым")
        assert not fires("{all_words: [молоко, кислый]}", "молоко оказалось свежим")

    def test_not_words(self) -> None:
        assert fires("{not_words: [конкурс]}", "обычный вопрос")
        assert not fires("{not_words: [конкурс]}", "это про конкурсы?")

    def test_yo_and_e_are_the_same(self) -> None:
        assert fires("{words: [ёлка]}", "купили елку")


class TestPatterns:
    def test_regex_on_folded_text(self) -> None:
        assert fires(r"{regex: 'заказ\s*№?\s*\d{5}'}", "Где ЗАКАЗ № 12345?")
        assert not fires(r"{regex: 'заказ\s*№?\s*\d{5}'}", "где заказ 12?")

    def test_regex_keeps_escapes_and_folds_yo(self) -> None:
        assert fires(r"{regex: 'счёт\D+\d+'}", "СЧЕТ номер 42")

    def test_hashtags(self) -> None:
        assert fires("{hashtags: ['#Акция']}", "Ура #акция")
        assert not fires("{hashtags: [акция]}", "Ура акция")


class TestRating:
    def test_range(self) -> None:
        assert fires('{rating: "1-2"}', kind="review", rating=2)
        assert not fires('{rating: "1-2"}', kind="review", rating=3)

    def test_no_rating(self) -> None:
        assert not fires("{rating: 5}", kind="review")

    def test_mapping(self) -> None:
        assert fires("{rating: {min: 4}}", kind="review", rating=5)


class TestRegionAndTopic:
    def test_region(self) -> None:
        assert fires("{region: samara}", "Купил в Тольятти")
        assert not fires("{region: samara}", "Купил в Казани")

    def test_unknown_region(self) -> None:
        assert fires("{region: unknown}", "Купил где-то")
        assert not fires("{region: unknown}", "Купил в Казани")

    def test_topic(self) -> None:
        assert fires("{topic: vacancy}", "есть вакансии?")
        assert fires("{topic: unknown}", "добрый день")


class TestTime:
    def test_time_in_region_zone(self) -> None:
        # 08:00 UTC is 11:00 in Moscow and 12:00 in Samara.
        assert fires('{time: "11:00-12:00"}', "в Казани", now=WEDNESDAY_11_MSK)
        assert not fires('{time: "11:00-12:00"}', "в Самаре", now=WEDNESDAY_11_MSK)
        assert fires('{time: "12:00-13:00"}', "в Самаре", now=WEDNESDAY_11_MSK)

    def test_received_at_wins_over_now(self) -> None:
        night = datetime(2025, 11, 12, 21, 30, tzinfo=UTC)  # 00:30 in Moscow
        assert fires('{time: "22:00-08:00"}', "в Москве", received_at=night)

    def test_weekdays(self) -> None:
        assert fires("{weekdays: [ср]}")
        assert fires('{weekdays: "пн-пт"}')
        assert not fires("{weekdays: [сб, вс]}")


class TestAuthor:
    def test_pattern_on_normalised_phone(self) -> None:
        assert fires(r"{author: {phone: '^\+7495'}}", phone="8 (495) 111-22-33")

    def test_email_pattern(self) -> None:
        assert fires(r"{author: {email: '@farm\.example$'}}", email="Ivan@FARM.example")

    def test_presence(self) -> None:
        assert fires("{author: {phone: true}}", phone="+7 916 111 22 33")
        assert fires("{author: {phone: false}}")
        assert not fires("{author: {name: true}}")


class TestFields:
    def test_exact_value_case_insensitive(self) -> None:
        assert fires("{fields: {form: vacancy}}", fields={"form": "Vacancy"})
        assert not fires("{fields: {form: vacancy}}", fields={"form": "rent"})

    def test_list_and_numbers(self) -> None:
        assert fires('{fields: {ivr_choice: ["1", "2"]}}', fields={"ivr_choice": 2})

    def test_presence(self) -> None:
        assert fires("{fields: {promo: true}}", fields={"promo": "X1"})
        assert fires("{fields: {promo: false}}", fields={})

    def test_dialed_line_in_any_spelling(self) -> None:
        assert fires('{fields: {line: "+7 495 111-22-33"}}', fields={"line": "84951112233"})


def test_all_conditions_of_a_rule_must_hold() -> None:
    condition = "{channel: vk, words: [вакансия]}"
    assert fires(condition, "вакансии", channel="vk")
    assert not fires(condition, "вакансии", channel="telegram")
    assert not fires(condition, "привет", channel="vk")
