"""Russian first, English complete: every interface text has an English translation."""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.ui.i18n import (
    LOCALE_DIR,
    gettext,
    pick_language,
    translate_message,
    translations,
    use_language,
)

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


def checker_templates() -> set[str]:
    """The rule checker's messages (``problems.error(…, f"…")`` in ``hub/routing``) as the
    catalogue templates they are translated from: each ``{…}`` is ``%(a)s``, ``%(b)s``…"""
    found: set[str] = set()
    for path in sorted((ROOT / "hub" / "routing").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("error", "warning")
                and node.args
            ):
                continue
            message = node.args[-1]
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                found.add(message.value)
            elif isinstance(message, ast.JoinedStr):
                parts, n = [], 0
                for value in message.values:
                    if isinstance(value, ast.Constant):
                        parts.append(str(value.value).replace("%", "%%"))
                    else:
                        parts.append(f"%({'abcdefgh'[n]})s")
                        n += 1
                found.add("".join(parts))
    return found


def test_every_checker_message_has_an_english_translation() -> None:
    with (LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        translated = {m.id for m in read_po(fh) if m.id and m.string}
    templates = checker_templates()
    assert len(templates) > 80, "the checker's messages were not found"
    missing = sorted(templates - translated)
    assert not missing, "translate in en/messages.po (placeholders %(a)s, %(b)s…): " + repr(missing)


def test_formatted_server_messages_are_translated_back_from_their_templates() -> None:
    nested = "правило «r1»: регулярное выражение «(» не компилируется: missing )"
    assert translate_message(nested, "en") == (
        "rule «r1»: the regular expression «(» does not compile: missing )"
    )
    assert translate_message("обращения 5 нет", "en") == "there is no appeal 5"
    assert translate_message("обращения 5 нет", "ru") == "обращения 5 нет"
    assert translate_message("что-то своё: 5", "en") == "что-то своё: 5"  # unknown stays
    assert gettext("пароль короче %(n)s символов", "en", n=10) == (
        "the password is shorter than 10 characters"
    )


def test_checker_problems_come_in_the_readers_language() -> None:
    from hub.rules_io import read_dir
    from hub.ui import drafts

    files = read_dir(ROOT / "routing_rules" / "sample")
    broken = {**files, "rules.yaml": files["rules.yaml"] + "\n  - id: empty-one\n    when: {}\n"}
    use_language("en")
    try:
        english = [p.message for p in drafts.check_change(files, broken).new_errors]
    finally:
        use_language("ru")
    russian = [p.message for p in drafts.check_change(files, broken).new_errors]
    assert russian and any("нет действий" in m for m in russian), russian
    assert any("no actions (then)" in m for m in english), english
