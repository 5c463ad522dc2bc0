"""Interface languages: Russian first, English available, chosen per user.

Message ids are the Russian texts, so a string without an English translation still shows in
Russian, never as a key. The catalogues are the ``.po`` files in ``web/locale``; they are
compiled in memory at start (no ``.mo`` in the repository to drift from its source).
Dates and numbers are formatted by Babel in the user's language, times in Moscow time.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
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
