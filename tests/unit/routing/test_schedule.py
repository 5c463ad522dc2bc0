"""Working hours, days and absences as admins type them."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from hub.routing.schedule import (
    in_time_range,
    on_duty,
    parse_absences,
    parse_days,
    parse_hours,
    parse_time_range,
    zone,
)


class TestParseDays:
    def test_range(self) -> None:
        assert parse_days("пн-пт") == {0, 1, 2, 3, 4}

    def test_list_and_english(self) -> None:
        assert parse_days("сб, вс") == {5, 6}
        assert parse_days("mon,wed") == {0, 2}

    def test_wrapping_range(self) -> None:
        assert parse_days("пт-пн") == {4, 5, 6, 0}

    def test_every_day(self) -> None:
        assert parse_days("ежедневно") == set(range(7))

    def test_unknown_day(self) -> None:
        with pytest.raises(ValueError, match="понедельник"):
            parse_days("понедельник")


class TestHours:
    def test_blocks(self) -> None:
        hours = parse_hours("пн-пт 09:00-18:00; сб 10:00-16:00")
        assert len(hours) == 2
        assert hours[1].weekdays == {5} and hours[1].start == time(10)

    def test_always(self) -> None:
        assert parse_hours("круглосуточно") == []
        assert parse_hours("") == []

    def test_bad_time(self) -> None:
        with pytest.raises(ValueError, match="09:00-18:00"):
            parse_hours("пн-пт 9-18")

    def test_day_shift(self) -> None:
        hours = parse_hours("пн-пт 09:00-18:00")
        assert on_duty(hours, datetime(2025, 11, 12, 9, 0))  # Wednesday
        assert not on_duty(hours, datetime(2025, 11, 12, 18, 0))
        assert not on_duty(hours, datetime(2025, 11, 15, 12, 0))  # Saturday

    def test_night_shift_runs_past_midnight(self) -> None:
        hours = parse_hours("пн-пт 20:00-08:00")
        assert on_duty(hours, datetime(2025, 11, 14, 23, 0))  # Friday night
        assert on_duty(hours, datetime(2025, 11, 15, 7, 59))  # Saturday morning, Friday's shift
        assert not on_duty(hours, datetime(2025, 11, 15, 23, 0))  # Saturday night: no shift

    def test_whole_day(self) -> None:
        hours = parse_hours("сб 00:00-00:00")
        assert on_duty(hours, datetime(2025, 11, 15, 0, 0))
        assert on_duty(hours, datetime(2025, 11, 15, 23, 59))
        assert not on_duty(hours, datetime(2025, 11, 16, 0, 1))


class TestTimeRange:
    def test_parse(self) -> None:
        assert parse_time_range("22:00-08:00") == (time(22), time(8))

    def test_wraps(self) -> None:
        assert in_time_range(time(22), time(8), time(3))
        assert not in_time_range(time(22), time(8), time(12))
        assert in_time_range(time(9), time(18), time(9))


class TestAbsences:
    def test_ranges_and_single_days(self) -> None:
        assert parse_absences("2025-07-01..2025-07-14; 2025-08-03") == [
            (date(2025, 7, 1), date(2025, 7, 14)),
            (date(2025, 8, 3), date(2025, 8, 3)),
        ]

    def test_backwards_range(self) -> None:
        with pytest.raises(ValueError, match="раньше"):
            parse_absences("2025-07-14..2025-07-01")

    def test_not_a_date(self) -> None:
        with pytest.raises(ValueError, match="даты"):
            parse_absences("1 июля")


def test_unknown_zone() -> None:
    with pytest.raises(ValueError, match="часовой пояс"):
        zone("Europe/Atlantis")
