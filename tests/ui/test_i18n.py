"""Russian first, English complete: every interface text has an English translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.ui.i18n import LOCALE_DIR, pick_language, translations

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("hub/ui/**.py", "python"), ("web/templates/**.html", "jinja2")]


def used_messages() -> set[str]:
    found = extract_from_dir(str(ROOT), METHODS, keywords={"_": None, "gettext": None, "N_": None})
    return {message for _file, _line, message, _comments, _context in found if message}


def test_every_text_in_the_code_has_an_english_translation() -> None:
    with (LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(used_messages() - translated)
    assert not missing, "pybabel extract/update, then translate in en/messages.po: " + repr(missing)


def test_language_choice() -> None:
    assert pick_language(None, "en-GB,en;q=0.8") == "en"
    assert pick_language(None, "de-DE,fr") == "ru"
    assert pick_language("ru", "en") == "ru"
    assert translations("en").gettext("Очередь") == "Queue"
    assert translations("ru").gettext("Очередь") == "Очередь"
