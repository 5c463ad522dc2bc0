"""Operator messages from Bitrix24 (BB-code, the signature prefix) into each channel's text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.platform_http import TransientError
from hub.replies import not_sent
from hub.reply_content import bbcode_to_text, format_reply, split_signature

PAYLOADS = Path("/work/shared/research/payloads/bitrix24")


class TestSplitSignature:
    def test_the_documented_event_text(self) -> None:
        # The text of OnImConnectorMessageAdd in the docs (on-im-connector-message-add.md).
        text = "[b]Klaus Weber:[/b] [br]Guten Tag!"
        assert split_signature(text) == ("Klaus Weber", "Guten Tag!")

    def test_no_signature_when_the_line_turns_it_off(self) -> None:
        assert split_signature("[b]Важно:[/b]нет переноса") == ("Важно", "нет переноса")
        assert split_signature("Просто текст") == (None, "Просто текст")


class TestBbcodeToText:
    @pytest.mark.parametrize(
        ("bb", "plain"),
        [
            ("[B]Жирный[/B] и [i]курсив[/i], [u]подчёркнутый[/u], [s]зачёркнутый[/s]",
             "Жирный и курсив, подчёркнутый, зачёркнутый"),
            ("строка[BR]вторая[br]третья", "строка\nвторая\nтретья"),
            ("[URL=https://shop.example/a]акция[/URL]", "акция (https://shop.example/a)"),
            ("[url]https://shop.example[/url]", "https://shop.example"),
            ("[url=https://x.example]https://x.example[/url]", "https://x.example"),
            ("[USER=12]Иван Петров[/USER], посмотрите", "Иван Петров, посмотрите"),
            ("[SEND=/help]Помощь[/SEND] или [PUT=/order]заказ[/PUT]", "Помощь или заказ"),
            ("[quote]вы писали[br]две строки[/quote]ответ", "> вы писали\n> две строки\nответ"),
            ("[icon=https://x/i.png size=20] значок", "значок"),
            ("[color=#ff0000]красный[/color] [size=20]крупный[/size]", "красный крупный"),
            ("Цена &quot;99&quot; &amp; скидка", 'Цена "99" & скидка'),
            ("[list][*]раз[*]два[/list]", "• раз• два"),
            ("a[br][br][br][br]b", "a\n\nb"),
            ("[неизвестный тег] остаётся", "[неизвестный тег] остаётся"),
        ],
    )  # fmt: skip
    def test_converts(self, bb: str, plain: str) -> None:
        assert bbcode_to_text(bb) == plain


class TestFormatReply:
    def test_messengers_put_the_name_first(self) -> None:
        text = "[b]Мария Соколова:[/b] [br]Заказ [b]4512[/b] приедет завтра."
        assert format_reply(text, "vk") == "Мария Соколова:\nЗаказ 4512 приедет завтра."
        assert format_reply(text, "telegram") == format_reply(text, "ok")

    def test_letters_and_review_answers_sign_at_the_end(self) -> None:
        text = "[b]Мария Соколова:[/b] [br]Спасибо за отзыв!"
        assert format_reply(text, "email") == "Спасибо за отзыв!\n\n— Мария Соколова"
        assert format_reply(text, "twogis") == "Спасибо за отзыв!\n\n— Мария Соколова"

    def test_the_saved_event_payload(self) -> None:
        event = json.loads((PAYLOADS / "OnImConnectorMessageAdd.json").read_text())
        text = event["data"]["MESSAGES"][0]["message"]["text"]
        assert format_reply(text, "vk") == "Klaus Weber:\nGuten Tag!"

    def test_unsigned_text_is_just_converted(self) -> None:
        assert format_reply("Да[br]конечно", "vk") == "Да\nконечно"


class TestNotSent:
    """Only a refusal before the platform saw the request is safe to send again as new."""

    @pytest.mark.parametrize(
        ("error", "safe"),
        [
            (TransientError("vk", "messages.send: error 6: Too many", code=6), True),
            (TransientError("vk", "messages.send: error 9: Flood control", code=9), True),
            (TransientError("telegram", "sendMessage: 429", status=429), True),
            (TransientError("telegram", "network error: ConnectError"), True),
            (TransientError("smtp", "SMTP 451"), True),
            (TransientError("telegram", "network error: ReadTimeout"), False),
            (TransientError("ok", "messages: HTTP 502", status=502), False),
            (TransientError("vk", "messages.send: error 10: Internal", code=10), False),
            (TransientError("smtp", "SMTPServerDisconnected: gone"), False),
        ],
    )
    def test_classifies(self, error: TransientError, safe: bool) -> None:
        assert not_sent(error) is safe
