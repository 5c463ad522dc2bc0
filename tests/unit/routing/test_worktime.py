"""Working-time arithmetic: nights, weekends, holidays, transfers, shortened days, zones, shifts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.routing.schedule import parse_hours
from hub.routing.worktime import NoWorkingTime, WorkClock

MSK = ZoneInfo("Europe/Moscow")
EKB = ZoneInfo("Asia/Yekaterinburg")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = parse_hours("пн-пт 09:00-18:00")


@dataclass
class Days:
    holidays: set[date] = field(default_factory=set)
    workdays: set[date] = field(default_factory=set)
    short_days: set[date] = field(default_factory=set)


# November 2026: Wednesday 4th is a federal holiday, Tuesday 3rd is one hour shorter.
NOVEMBER = Days(holidays={date(2026, 11, 4)}, short_days={date(2026, 11, 3)})


def msk(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=MSK)


def clock(hours: str = "пн-пт 09:00-18:00", zone: ZoneInfo = MSK, days: Days | None = None):
    return WorkClock(parse_hours(hours), zone, days or Days())


class TestAdd:
    def test_inside_one_working_day(self) -> None:
        assert clock().add(msk(2, 10), 30) == msk(2, 10, 30)

    def test_the_result_is_utc(self) -> None:
        due = clock().add(msk(2, 10), 30)
        assert due.tzinfo == UTC and due == datetime(2026, 11, 2, 7, 30, tzinfo=UTC)

    def test_evening_carries_over_to_the_next_morning(self) -> None:
        assert clock().add(msk(2, 17, 50), 30) == msk(3, 9, 20)

    def test_friday_evening_carries_over_the_weekend(self) -> None:
        assert clock().add(msk(6, 17, 45), 60) == msk(9, 9, 45)

    def test_arrival_at_night_starts_at_opening(self) -> None:
        assert clock().add(msk(2, 3, 0), 30) == msk(2, 9, 30)

    def test_arrival_on_saturday_starts_on_monday(self) -> None:
        assert clock().add(msk(7, 12, 0), 30) == msk(9, 9, 30)

    def test_closing_time_is_not_working_time(self) -> None:
        """Spans are half-open: at 18:00 sharp the office is closed."""
        assert clock().add(msk(2, 18, 0), 0) == msk(3, 9, 0)
        assert clock().add(msk(2, 17, 30), 30) == msk(2, 18, 0)

    def test_zero_minutes_inside_hours_is_the_moment_itself(self) -> None:
        assert clock().add(msk(2, 11, 15, 7), 0) == msk(2, 11, 15, 7)

    def test_holiday_is_skipped(self) -> None:
        c = clock(days=NOVEMBER)
        assert c.add(msk(3, 16, 50), 30) == msk(5, 9, 20)

    def test_shortened_day_ends_an_hour_early(self) -> None:
        c = clock(days=NOVEMBER)
        assert c.add(msk(3, 16, 30), 20) == msk(3, 16, 50)
        assert c.add(msk(3, 17, 30), 30) == msk(5, 9, 30)  # 17:30 is after the short day

    def test_new_year_holidays_and_a_transferred_day_off(self) -> None:
        days = {date(2025, 12, 31)} | {date(2026, 1, d) for d in range(1, 10)}
        c = clock(days=Days(holidays=days))
        start = datetime(2025, 12, 30, 17, 0, tzinfo=MSK)
        assert c.add(start, 120) == datetime(2026, 1, 12, 10, 0, tzinfo=MSK)
        assert clock().add(start, 120) == datetime(2025, 12, 31, 10, 0, tzinfo=MSK)

    def test_working_saturday_uses_weekday_hours(self) -> None:
        saturday = date(2026, 11, 7)
        c = clock(days=Days(workdays={saturday}))
        assert c.add(msk(6, 17, 30), 60) == msk(7, 9, 30)

    def test_days_of_work_across_a_week(self) -> None:
        """540 minutes a day: 3 working days from Wednesday noon is Monday noon."""
        assert clock().add(msk(4, 12), 3 * 540) == msk(9, 12)

    def test_zone_of_the_responsible(self) -> None:
        """09:00 in Yekaterinburg is 07:00 in Moscow."""
        c = clock(zone=EKB)
        assert c.add(msk(2, 6, 0), 30) == msk(2, 7, 30)
        assert c.add(msk(2, 16, 0), 30) == msk(3, 7, 30)  # 18:00 there already

    def test_night_shift_runs_past_midnight(self) -> None:
        c = clock("ежедневно 20:00-08:00")
        assert c.add(msk(2, 23, 0), 120) == msk(3, 1, 0)
        assert c.add(msk(3, 7, 30), 60) == msk(3, 20, 30)
        assert c.add(msk(3, 3, 0), 30) == msk(3, 3, 30)  # yesterday's shift is still running

    def test_round_the_clock_skips_only_holidays(self) -> None:
        """And is not shortened on the eve of one (Labour Code art. 95)."""
        c = WorkClock([], MSK, NOVEMBER)
        assert c.add(msk(3, 23, 0), 120) == msk(5, 1, 0)
        assert WorkClock([], MSK).add(msk(3, 23, 0), 120) == msk(4, 1, 0)

    def test_overlapping_intervals_count_once(self) -> None:
        c = clock("пн-пт 09:00-18:00; пн 17:00-20:00")
        assert c.add(msk(2, 17, 0), 150) == msk(2, 19, 30)
        assert c.elapsed(msk(2, 9), msk(2, 20)) == timedelta(hours=11)

    def test_a_night_shift_overlapping_a_morning_shift_counts_once(self) -> None:
        c = clock("пн 20:00-09:00; вт 07:00-12:00")
        assert c.elapsed(msk(2, 20), msk(3, 12)) == timedelta(hours=16)
        assert c.add(msk(3, 8), 90) == msk(3, 9, 30)

    def test_daylight_saving_change_is_real_time(self) -> None:
        """Berlin's night of 25 October 2026 lasts 13 hours: a 20:00-08:00 shift too."""
        c = WorkClock(parse_hours("ежедневно 20:00-08:00"), BERLIN)
        start = datetime(2026, 10, 24, 20, 0, tzinfo=BERLIN)
        end = datetime(2026, 10, 25, 8, 0, tzinfo=BERLIN)
        assert c.elapsed(start, end) == timedelta(hours=13)
        assert c.add(start, 13 * 60) == end.astimezone(UTC)

    def test_negative_minutes_are_refused(self) -> None:
        with pytest.raises(ValueError):
            clock().add(msk(2, 10), -1)

    def test_a_schedule_that_never_works(self) -> None:
        every_monday = Days(holidays={date(2026, 1, 5) + timedelta(weeks=w) for w in range(600)})
        c = clock("пн 09:00-18:00", days=every_monday)
        with pytest.raises(NoWorkingTime):
            c.add(msk(2, 10), 30)

    def test_timedelta_and_seconds(self) -> None:
        assert clock().add(msk(2, 17, 59, 59), timedelta(seconds=2)) == msk(3, 9, 0, 1)

    def test_naive_moments_are_utc(self) -> None:
        assert clock().add(datetime(2026, 11, 2, 7, 0), 30) == msk(2, 10, 30)


class TestElapsed:
    def test_inside_a_day(self) -> None:
        assert clock().elapsed(msk(2, 10), msk(2, 12, 30)) == timedelta(minutes=150)

    def test_across_a_night_and_a_holiday(self) -> None:
        c = clock(days=NOVEMBER)
        # Tue 16:00-17:00 (short day), Wed holiday, Thu 09:00-10:00.
        assert c.elapsed(msk(3, 16), msk(5, 10)) == timedelta(hours=2)

    def test_over_a_weekend_nothing_passes(self) -> None:
        assert clock().elapsed(msk(7, 10), msk(8, 23)) == timedelta(0)

    def test_reversed_is_negative(self) -> None:
        assert clock().elapsed(msk(2, 12), msk(2, 10)) == -timedelta(hours=2)

    def test_a_full_week(self) -> None:
        assert clock().elapsed(msk(2, 0), msk(9, 0)) == timedelta(hours=45)
        assert clock(days=NOVEMBER).elapsed(msk(2, 0), msk(9, 0)) == timedelta(hours=35)


class TestDay:
    def test_day_minutes(self) -> None:
        assert clock().day_minutes() == 540
        assert clock("пн-пт 09:00-18:00; сб 10:00-16:00").day_minutes() == 540
        assert clock("ежедневно 20:00-08:00").day_minutes() == 720
        assert WorkClock([], MSK).day_minutes() == 1440

    def test_is_working(self) -> None:
        c = clock(days=NOVEMBER)
        assert c.is_working(msk(2, 9, 0)) and not c.is_working(msk(2, 18, 0))
        assert not c.is_working(msk(4, 12)) and not c.is_working(msk(3, 17, 30))
        night = clock("ежедневно 20:00-08:00")
        assert night.is_working(msk(3, 2)) and not night.is_working(msk(3, 12))

    def test_spans_are_cached(self) -> None:
        c = clock()
        assert c.spans(date(2026, 11, 2)) is c.spans(date(2026, 11, 2))


MOMENTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(start=MOMENTS, minutes=st.integers(min_value=0, max_value=60 * 24 * 10))
def test_add_and_elapsed_are_inverse(start: datetime, minutes: int) -> None:
    c = clock("пн-пт 09:00-18:00; сб 10:00-14:00", days=NOVEMBER)
    due = c.add(start, minutes)
    assert due >= start
    assert c.elapsed(start, due) == timedelta(minutes=minutes)
    if minutes:
        assert c.add(start, minutes - 1) < due


@settings(max_examples=100, deadline=None)
@given(start=MOMENTS, a=st.integers(0, 5000), b=st.integers(0, 5000))
def test_adding_in_two_steps_is_adding_once(start: datetime, a: int, b: int) -> None:
    c = clock("ежедневно 20:00-08:00", zone=EKB, days=NOVEMBER)
    assert c.add(c.add(start, a), b) == c.add(start, a + b)


@settings(max_examples=100, deadline=None)
@given(start=MOMENTS, offsets=st.lists(st.integers(0, 20000), max_size=6))
def test_add_many_is_add_for_each(start: datetime, offsets: list[int]) -> None:
    c = clock("пн-пт 09:00-18:00", zone=EKB, days=NOVEMBER)
    deltas = [timedelta(minutes=m) for m in offsets]
    assert c.add_many(start, deltas) == [c.add(start, d) for d in deltas]
