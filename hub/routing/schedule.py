"""Working hours, weekdays and absences, written the way an admin types them in a spreadsheet.

Hours: ``пн-пт 09:00-18:00; сб 10:00-16:00``, ``ежедневно 20:00-08:00`` (a night shift runs
past midnight), ``круглосуточно``. Absences: ``2025-07-01..2025-07-14; 2025-08-03``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.routing.model import Interval

DAY_NAMES = {
    "пн": 0, "вт": 1, "ср": 2, "чт": 3, "пт": 4, "сб": 5, "вс": 6,
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
}  # fmt: skip
DAY_LABELS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
ALL_DAYS = frozenset(range(7))
_EVERY_DAY = {"ежедневно", "daily", "каждый день"}
_ALWAYS = {"круглосуточно", "24/7", "always"}
_RANGE_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def parse_days(text: str) -> frozenset[int]:
    """``пн-пт``, ``сб,вс``, ``ежедневно``; raises ValueError with a Russian reason."""
    text = text.strip().lower()
    if text in _EVERY_DAY:
        return ALL_DAYS
    days: set[int] = set()
    for part in re.split(r"[\s,]+", text):
        if not part:
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAY_NAMES or last not in DAY_NAMES:
                raise ValueError(f"не понимаю дни «{part}» (пишите пн-пт, сб, вс)")
            day = DAY_NAMES[first]
            while True:
                days.add(day)
                if day == DAY_NAMES[last]:
                    break
                day = (day + 1) % 7
        elif part in DAY_NAMES:
            days.add(DAY_NAMES[part])
        else:
            raise ValueError(f"не понимаю день «{part}» (пишите пн, вт, … вс)")
    if not days:
        raise ValueError("не указаны дни недели")
    return frozenset(days)


def parse_time_range(text: str) -> tuple[time, time]:
    match = _RANGE_RE.match(text.strip())
    if not match:
        raise ValueError(f"не понимаю время «{text}» (пишите 09:00-18:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
        raise ValueError(f"нет такого времени: «{text}»")
    return time(h1 % 24, m1), time(h2 % 24, m2)


def parse_hours(text: str) -> list[Interval]:
    """An empty cell or ``круглосуточно`` means always on duty (an empty list)."""
    text = text.strip()
    if not text or text.lower() in _ALWAYS:
        return []
    intervals: list[Interval] = []
    for block in text.split(";"):
        block = block.strip()
        if not block:
            continue
        days_text, _, times_text = block.rpartition(" ")
        if not days_text:
            days_text, times_text = "ежедневно", block
        start, end = parse_time_range(times_text)
        intervals.append(Interval(parse_days(days_text), start, end))
    return intervals


def on_duty(intervals: Iterable[Interval], local: datetime) -> bool:
    """Whether a local time falls inside the hours; a shift ending at or before its start
    continues into the next day (``20:00-08:00``); ``00:00-00:00`` is the whole day."""
    weekday, now = local.weekday(), local.time()
    yesterday = (weekday - 1) % 7
    for interval in intervals:
        if interval.start < interval.end:
            if weekday in interval.weekdays and interval.start <= now < interval.end:
                return True
        elif (weekday in interval.weekdays and now >= interval.start) or (
            yesterday in interval.weekdays and now < interval.end
        ):
            return True
    return False


def in_time_range(start: time, end: time, now: time) -> bool:
    if start < end:
        return start <= now < end
    return now >= start or now < end


def parse_absences(text: str) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for part in re.split(r"[;,\s]+", text.strip()):
        if not part:
            continue
        first, _, last = part.partition("..")
        try:
            start = date.fromisoformat(first)
            end = date.fromisoformat(last) if last else start
        except ValueError as exc:
            raise ValueError(f"не понимаю даты «{part}» (пишите 2025-07-01..2025-07-14)") from exc
        if end < start:
            raise ValueError(f"отсутствие «{part}» кончается раньше, чем начинается")
        out.append((start, end))
    return out


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """A cached IANA zone; raises ValueError for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"неизвестный часовой пояс «{name}»") from exc
