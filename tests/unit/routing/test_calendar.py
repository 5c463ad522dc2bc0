"""calendar.yaml: the 2026 production calendar of the sample, and every mistake at file:line."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.routing.calendar import Calendar, CalendarSet
from hub.routing.compile import check_files
from hub.routing.schedule import parse_hours
from hub.routing.worktime import WorkClock
from hub.rules_io import read_dir
from tests.unit.routing.helpers import files

MSK = ZoneInfo("Europe/Moscow")
SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"
_SAMPLE_CAL: CalendarSet | None = None


def sample_calendars() -> CalendarSet:
    global _SAMPLE_CAL
    if _SAMPLE_CAL is None:
        model, problems = check_files(read_dir(SAMPLE))
        assert not [p for p in problems if p.file in ("calendar.yaml", "sla.yaml")], problems
        assert model.calendar is not None
        _SAMPLE_CAL = model.calendar
    return _SAMPLE_CAL


def year_2026() -> list[date]:
    return [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]


def working_days(cal: Calendar) -> int:
    """Counted the way the production calendar counts: Monday to Friday, minus holidays,
    plus working weekends."""
    return sum(1 for d in year_2026() if cal.is_working_day(d))


def hours_norm(cal: Calendar) -> float:
    """The 40-hour-week norm, through the clock: 8 hours a day, an hour less on the eve."""
    clock = WorkClock(parse_hours("пн-пт 09:00-17:00"), MSK, cal)
    start = datetime(2026, 1, 1, tzinfo=MSK)
    return clock.elapsed(start, start.replace(year=2027)) / timedelta(hours=1)


class TestSample2026:
    """Figures published with each 2026 calendar, recomputed from the file."""

    def test_federal(self) -> None:
        ru = sample_calendars().calendars["ru"]
        assert working_days(ru) == 247  # Government resolution No. 1466 of 24.09.2025
        assert hours_norm(ru) == 1972
        assert not ru.is_working_day(date(2026, 1, 9))  # moved from Saturday 3 January
        assert not ru.is_working_day(date(2026, 12, 31))  # moved from Sunday 4 January
        assert not ru.is_working_day(date(2026, 3, 9)) and not ru.is_working_day(date(2026, 5, 11))
        assert ru.is_working_day(date(2026, 3, 20))

    def test_tatarstan(self) -> None:
        tat = sample_calendars().calendars["tatarstan"]
        assert working_days(tat) == 244  # Tatarstan's Ministry of Labour: 244 days, 1945 hours
        assert hours_norm(tat) == 1945
        for day in (date(2026, 3, 20), date(2026, 5, 27), date(2026, 11, 6)):
            assert not tat.is_working_day(day)
        assert tat.is_working_day(date(2026, 8, 31))  # Republic Day on Sunday is not moved
        assert tat.holidays[date(2026, 1, 9)]  # the federal days come with the base

    def test_bashkortostan(self) -> None:
        bash = sample_calendars().calendars["bashkortostan"]
        assert working_days(bash) == 244  # the republic's government: 244 working days
        assert not bash.is_working_day(date(2026, 10, 12))  # Republic Day moved from Sunday
        assert date(2026, 3, 19) in bash.short_days

    def test_chuvashia(self) -> None:
        chu = sample_calendars().calendars["chuvashia"]
        assert working_days(chu) == 246  # Republic Day, Wednesday 24 June
        assert date(2026, 6, 23) in chu.short_days

    def test_regions_and_default(self) -> None:
        cals = sample_calendars()
        assert cals.for_region("tatarstan").code == "tatarstan"  # type: ignore[union-attr]
        assert cals.for_region("moscow").code == "ru"  # type: ignore[union-attr]
        assert cals.for_region(None).code == "ru"  # type: ignore[union-attr]


def problems_of(calendar_yaml: str) -> list[str]:
    _model, problems = check_files(files(calendar_yaml=calendar_yaml))
    return [str(p) for p in problems if p.file == "calendar.yaml"]


class TestMistakes:
    def test_a_clean_small_calendar(self) -> None:
        text = "calendars:\n  ru:\n    holidays:\n      2026-11-04: День народного единства\n"
        assert problems_of(text) == []

    def test_bad_dates_and_ranges(self) -> None:
        text = (
            "calendars:\n"
            "  ru:\n"
            "    holidays:\n"
            "      2026-02-30: нет такого дня\n"
            "      2026-05-10..2026-05-01: наоборот\n"
            "      '2026-01-01..2027-06-01': больше года\n"
        )
        found = problems_of(text)
        assert any(p.startswith("calendar.yaml:4:") and "не понимаю дату" in p for p in found)
        assert any(p.startswith("calendar.yaml:5:") and "конец раньше начала" in p for p in found)
        assert any(p.startswith("calendar.yaml:6:") and "длиннее года" in p for p in found)

    def test_unknown_keys_base_and_cycles(self) -> None:
        text = (
            "calendars:\n"
            "  a:\n"
            "    base: b\n"
            "  b:\n"
            "    base: a\n"
            "  c:\n"
            "    base: nowhere\n"
            "    colour: red\n"
            "default: ru\n"
        )
        found = problems_of(text)
        assert any("calendar.yaml:2:" in p and "цикл календарей: a → b → a" in p for p in found)
        assert any("calendar.yaml:6:" in p and "нет базового «nowhere»" in p for p in found)
        assert any("calendar.yaml:8:" in p and "неизвестный ключ «colour»" in p for p in found)
        assert any("calendar.yaml:9:" in p and "default: нет календаря «ru»" in p for p in found)

    def test_regions_must_exist_and_have_a_calendar(self) -> None:
        text = "calendars:\n  ru: {}\nregions:\n  atlantis: ru\n  moscow: nowhere\n"
        found = problems_of(text)
        assert any("calendar.yaml:4:" in p and "неизвестный регион «atlantis»" in p for p in found)
        assert any("calendar.yaml:5:" in p and "нет календаря «nowhere»" in p for p in found)

    def test_conflicting_days(self) -> None:
        text = (
            "calendars:\n"
            "  ru:\n"
            "    holidays:\n"
            "      2026-11-07: суббота\n"
            "      2026-11-04: праздник\n"
            "    workdays:\n"
            "      2026-11-07: рабочая суббота\n"
            "      2026-11-05: четверг\n"
            "    short_days:\n"
            "      2026-11-04: канун чего-то\n"
        )
        found = problems_of(text)
        assert any("calendar.yaml:7:" in p and "и выходной, и рабочий" in p for p in found)
        assert any("calendar.yaml:8:" in p and "будний день" in p for p in found)
        assert any("calendar.yaml:10:" in p and "не рабочий" in p for p in found)

    def test_a_day_twice(self) -> None:
        text = (
            "calendars:\n  ru:\n    holidays:\n"
            "      2026-01-01..2026-01-08: каникулы\n      2026-01-07: Рождество\n"
        )
        assert any("calendar.yaml:5:" in p and "уже указан" in p for p in problems_of(text))

    def test_a_region_keeps_a_base_working_saturday_unless_it_rests(self) -> None:
        text = (
            "calendars:\n"
            "  ru:\n    workdays:\n      2027-11-13: рабочая суббота\n"
            "  tatarstan:\n    base: ru\n    holidays:\n      2027-11-13: праздник\n"
            "  kazan:\n    base: ru\n"
        )
        model, _problems = check_files(files(calendar_yaml=text))
        assert model.calendar is not None
        cals = model.calendar.calendars
        assert cals["kazan"].is_working_day(date(2027, 11, 13))
        assert not cals["tatarstan"].is_working_day(date(2027, 11, 13))
