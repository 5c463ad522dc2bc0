"""Russian normalisation and phone parsing: the ground every condition stands on."""

from __future__ import annotations

import pytest

from hub.routing.text import (
    entry_lemmas,
    fold,
    hashtags,
    lemmas,
    parse_phone,
    phones_in_text,
    phrase,
    tokens,
)


class TestFold:
    def test_case_and_yo(self) -> None:
        assert fold("ЁЛКА Ёжик") == "елка ежик"

    def test_tokens_keep_hyphenated_words_and_numbers(self) -> None:
        assert tokens("Йошкар-Ола, ул. Ленина 15к2!") == ["йошкар-ола", "ул", "ленина", "15к2"]

    def test_emoji_and_punctuation_are_dropped(self) -> None:
        assert tokens("Спасибо!!! 😊👍 ...") == ["спасибо"]

    def test_hashtags(self) -> None:
        assert hashtags("Участвую #Конкурс #розыгрыш_призов #ЁЖ") == {
            "конкурс",
            "розыгрыш_призов",
            "еж",
        }


class TestLemmas:
    @pytest.mark.parametrize("form", ["вакансия", "вакансии", "вакансий", "вакансиями", "ВАКАНСИЮ"])
    def test_every_form_of_a_noun_meets_the_entry(self, form: str) -> None:
        assert entry_lemmas("вакансия") & lemmas(fold(form))

    def test_entry_keeps_only_its_own_reading(self) -> None:
        # «мыло» the noun, not the past tense of «мыть».
        assert entry_lemmas("мыло") == {"мыло"}
        assert not entry_lemmas("мыло") & lemmas("мыть")
        assert entry_lemmas("мыло") & lemmas("мыла")

    def test_yo_is_folded_in_lemmas(self) -> None:
        assert "елка" in lemmas("ёлки".replace("ё", "е"))

    def test_numbers_and_latin_stand_for_themselves(self) -> None:
        assert lemmas("15к2") == {"15к2"}
        assert lemmas("wifi") == {"wifi"}

    def test_phrase_is_a_sequence_of_lemma_sets(self) -> None:
        seq = phrase("ищу работу")
        assert len(seq) == 2
        assert "искать" in seq[0] and "работа" in seq[1]


class TestParsePhone:
    @pytest.mark.parametrize(
        "raw",
        [
            "+7 (843) 123-45-67",
            "8 843 123 45 67",
            "88431234567",
            "+78431234567",
            "8(843)1234567",
            "7-843-123-45-67",
            "8431234567",
        ],
    )
    def test_customary_spellings_read_the_same(self, raw: str) -> None:
        phone = parse_phone(raw)
        assert phone is not None
        assert phone.e164 == "+78431234567"
        assert not phone.mobile

    def test_five_digit_area_code(self) -> None:
        phone = parse_phone("+7 (81371) 6-68-10")
        assert phone is not None and phone.national == "8137166810"

    def test_mobile(self) -> None:
        phone = parse_phone("8 916 123-45-67")
        assert phone is not None and phone.mobile

    def test_toll_free(self) -> None:
        phone = parse_phone("8-800-555-35-35")
        assert phone is not None and phone.toll_free

    @pytest.mark.parametrize("raw", ["", "123", "не скажу", "+1 212 555 0100", "+7 843 12", None])
    def test_not_a_russian_number(self, raw: str | None) -> None:
        assert parse_phone(raw) is None

    def test_phones_in_text(self) -> None:
        found = phones_in_text("Перезвоните мне: 8 (4852) 33-44-55 или +7 916 000 11 22, спасибо")
        assert [p.e164 for p in found] == ["+74852334455", "+79160001122"]

    def test_no_phone_in_text(self) -> None:
        assert phones_in_text("Чек на 1 234 руб, карта 7788") == []
