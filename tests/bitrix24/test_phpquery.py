"""PHP bracket notation both ways (batch sub-commands, install callbacks, events)."""

from __future__ import annotations

from pathlib import Path

from hub.bitrix24 import phpquery

SHARED = Path(__file__).parent / "fixtures"


def test_round_trip():
    params = {
        "entityTypeId": 2,
        "fields": {"title": "ВК: отзыв", "fm": [{"value": "+7 916"}]},
        "flag": True,
        "none": None,
    }
    encoded = phpquery.encode(params)
    assert "fields[fm][0][value]=%2B7%20916" in encoded
    assert phpquery.parse(encoded) == {
        "entityTypeId": "2",
        "fields": {"title": "ВК: отзыв", "fm": [{"value": "+7 916"}]},
        "flag": "Y",
        "none": "",
    }


def test_install_callback_form():
    body = (
        "event=ONAPPINSTALL&auth%5Baccess_token%5D=abc&auth%5Brefresh_token%5D=def"
        "&auth%5Bdomain%5D=x.bitrix24.ru&auth%5Bexpires_in%5D=3600&data%5BLANGUAGE_ID%5D=ru"
    )
    parsed = phpquery.parse(body)
    assert parsed["auth"]["access_token"] == "abc"
    assert parsed["data"] == {"LANGUAGE_ID": "ru"}


def test_empty_brackets_append():
    assert phpquery.parse("values[]=a&values[]=b") == {"values": ["a", "b"]}
