"""Interface languages: Russian first, English available, chosen per user.

Message ids are the Russian texts, so a string without an English translation still shows in
Russian, never as a key. The catalogues are the ``.po`` files in ``web/locale``; they are
compiled in memory at start (no ``.mo`` in the repository to drift from its source).
Dates and numbers are formatted by Babel in the user's language, times in Moscow time.

Messages made outside the templates follow the request's language too: ``use_language`` is set
per request (``hub/ui/security.py``), ``gettext`` translates a message id with values, and
``translate_message`` turns an already formatted Russian message (a rule checker's problem, built
in ``hub/routing`` without knowing who reads it) back into its catalogue template and values and
translates it, values included when they are messages themselves.
"""

from __future__ import annotations

import io
import re
from contextvars import ContextVar
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LANGUAGES = {"ru": "Русский", "en": "English"}
DEFAULT_LANGUAGE = "ru"
DISPLAY_ZONE = ZoneInfo("Europe/Moscow")
LOCALE_DIR = Path(__file__).resolve().parents[2] / "web" / "locale"


_language: ContextVar[str] = ContextVar("clienthub_ui_language", default="ru")


def use_language(language: str) -> None:
    """The language of messages made for the current request (a context variable: each request
    and the thread it runs in has its own)."""
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _language.get()


def N_(message: str) -> str:
    """Marks a message id for the catalogue where it is defined; translated where shown."""
    return message


def gettext(message: str, language: str | None = None, **values: object) -> str:
    text = translations(language or current_language()).gettext(message)
    return text % values if values else text


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@cache
def _patterns(language: str) -> list[tuple[re.Pattern[str], str]]:
    """Catalogue ids with placeholders as patterns, the longest literal text first (the most
    specific template wins over «%(a)s: %(b)s»)."""
    catalog = translations(language)
    found = []
    for msgid, msgstr in getattr(catalog, "_catalog", {}).items():
        if not isinstance(msgid, str) or not msgstr or "%(" not in msgid:
            continue
        parts = _PLACEHOLDER.split(msgid)
        regex = "".join(
            re.escape(part.replace("%%", "%")) if i % 2 == 0 else f"(?P<{part}>.+?)"
            for i, part in enumerate(parts)
        )
        literal = sum(len(part) for part in parts[::2])
        found.append((literal, re.compile(f"^{regex}$", re.DOTALL), msgid))
    found.sort(key=lambda item: -item[0])
    return [(pattern, msgid) for _literal, pattern, msgid in found]


def translate_message(message: str, language: str | None = None) -> str:
    """A formatted Russian message in ``language``: the catalogue's own translation when the
    message is an id, else the most specific template it was formatted from, its values
    translated in turn; unknown messages stay as they are."""
    language = language or current_language()
    if language == DEFAULT_LANGUAGE or not message:
        return message
    return _translated(message, language)


@lru_cache(maxsize=8192)
def _translated(message: str, language: str, _depth: int = 0) -> str:
    catalog = translations(language)
    direct = catalog.gettext(message)
    if direct != message or _depth > 3:
        return direct
    for pattern, msgid in _patterns(language):
        match = pattern.match(message)
        if match is None:
            continue
        values = {k: _translated(v, language, _depth + 1) for k, v in match.groupdict().items()}
        return catalog.gettext(msgid) % values
    return message


@cache
def translations(language: str) -> NullTranslations:
    """The catalogue of ``language``. Russian texts are the message ids, so the Russian
    catalogue only rewords; an empty or missing entry shows the id itself."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def pick_language(user_language: str | None, accept_language: str | None) -> str:
    """The user's choice, else the browser's first supported language, else Russian."""
    if user_language in LANGUAGES:
        return user_language  # type: ignore[return-value]
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def fmt_datetime(value: datetime | None, language: str, pattern: str = "d MMM y, HH:mm") -> str:
    if value is None:
        return "—"
    return format_datetime(value, pattern, tzinfo=DISPLAY_ZONE, locale=language)


def fmt_number(value: float | int | None, language: str) -> str:
    return "—" if value is None else format_decimal(value, locale=language)


def fmt_duration(seconds: float | None, language: str) -> str:
    """3 ч 05 мин / 3 h 05 min: short enough for a table cell."""
    if seconds is None:
        return "—"
    ru = language == "ru"
    s = int(round(seconds))
    if s < 60:
        return f"{s} с" if ru else f"{s} s"
    minutes, _ = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} мин" if ru else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} ч {minutes:02d} мин" if ru else f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} дн {hours} ч" if ru else f"{days} d {hours} h"
