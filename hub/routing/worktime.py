"""Working-time arithmetic: add N working minutes to a moment, count working time between two.

A first-reply target of "30 minutes" means 30 minutes of someone's working time, so a complaint
that arrives on Friday at 17:50 is due on Monday at 09:20, and one that arrives on the eve of a
holiday waits for the next working day. ``WorkClock`` knows one schedule (``hours`` as the
directory writes them), one IANA zone and, optionally, one production calendar (holidays,
working weekends, shortened pre-holiday days). It is pure and cheap: the working spans of a day
are computed once per clock and date, and every answer is exact to the microsecond.

Spans are half-open, ``[start, end)``: a clock started at 18:00 sharp, when the office closes
at 18:00, starts counting the next morning. All datetimes returned are aware and in UTC; the
arithmetic is done on UTC instants, so a daylight-saving change (none in Russia since 2014,
but the zone is the admin's choice) lengthens or shortens a night shift the way a wall clock does.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from hub.routing.model import Interval

Span = tuple[datetime, datetime]
_DAY = timedelta(days=1)
_ZERO = timedelta(0)
# A schedule that never works (every working weekday a holiday) must not loop forever.
MAX_SEARCH_DAYS = 3660


class DayRules(Protocol):
    """What a production calendar tells the clock about a date."""

    holidays: Container[date]  # non-working, whatever the weekday
    workdays: Container[date]  # a weekend made working by a transfer
    short_days: Container[date]  # a working day one hour shorter (the eve of a holiday)


class NoWorkingTime(ValueError):
    """The schedule has no working minute within ``MAX_SEARCH_DAYS``."""


@dataclass(frozen=True)
class NoCalendar:
    """Weekdays only: no holidays, transfers or shortened days."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    short_days: frozenset[date] = frozenset()


@dataclass
class WorkClock:
    """Working time of one schedule in one zone under one calendar.

    ``intervals`` empty means round the clock. On a transferred working weekend the hours of
    the first weekday (Monday…Friday) that has any are used: the day replaces a weekday.
    ``short_minutes`` is how much earlier the last span of a shortened day ends (Labour Code
    art. 95: one hour; work round the clock is not shortened, the article exempts it).
    """

    intervals: Sequence[Interval]
    zone: ZoneInfo
    calendar: DayRules = field(default_factory=NoCalendar)
    short_minutes: int = 60
    _cache: dict[date, tuple[Span, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._substitute = next(
            (d for d in range(5) if any(d in i.weekdays for i in self.intervals)), 0
        )
        self._day_minutes = self._longest_day()

    # -- one day -------------------------------------------------------------------------------
    def spans(self, day: date) -> tuple[Span, ...]:
        """The working spans that *begin* on ``day`` (local date), in UTC, merged and sorted.
        A night shift's span ends on the next date."""
        found = self._cache.get(day)
        if found is None:
            found = self._cache[day] = self._spans(day)
        return found

    def _spans(self, day: date) -> tuple[Span, ...]:
        cal = self.calendar
        if day in cal.holidays:
            return ()
        if not self.intervals:
            local = [(time(0), time(0))]
        else:
            weekday = self._substitute if day in cal.workdays else day.weekday()
            local = [(i.start, i.end) for i in self.intervals if weekday in i.weekdays]
        spans: list[list[datetime]] = []
        for start, end in local:
            begin = datetime.combine(day, start, tzinfo=self.zone)
            finish = datetime.combine(day if start < end else day + _DAY, end, tzinfo=self.zone)
            spans.append([begin.astimezone(UTC), finish.astimezone(UTC)])
        spans.sort()
        merged: list[list[datetime]] = []
        for span in spans:
            if merged and span[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], span[1])
            else:
                merged.append(span)
        if merged and self.intervals and day in cal.short_days:  # not round-the-clock work
            cut = merged[-1][1] - timedelta(minutes=self.short_minutes)
            merged[-1][1] = max(cut, merged[-1][0])
        return tuple((s, e) for s, e in merged if e > s)

    def day_minutes(self) -> int:
        """The longest regular working day of the schedule, in minutes: what "1 working day"
        of a target means (09:00-18:00 gives 540)."""
        return self._day_minutes

    def _longest_day(self) -> int:
        if not self.intervals:
            return 24 * 60
        longest = 0
        for weekday in range(7):
            total = 0
            for i in self.intervals:
                if weekday in i.weekdays:
                    start = i.start.hour * 60 + i.start.minute
                    end = i.end.hour * 60 + i.end.minute
                    total += end - start if start < end else 24 * 60 - start + end
            longest = max(longest, total)
        return longest

    # -- walking -------------------------------------------------------------------------------
    def _local_date(self, moment: datetime) -> date:
        return _aware(moment).astimezone(self.zone).date()

    def walk(self, start: datetime) -> Iterator[Span]:
        """Working spans from ``start`` on, in order, clipped to begin no earlier than it; a
        span overlapping the one before (a night shift running into a morning shift) begins
        where that one ends, so no minute counts twice."""
        start = _aware(start)
        day = self._local_date(start) - _DAY  # yesterday's night shift may still be running
        pending: Span | None = None
        idle = 0
        while True:
            spans = self.spans(day)
            day += _DAY
            idle = 0 if spans else idle + 1
            if idle > MAX_SEARCH_DAYS:
                if pending is not None:
                    yield pending
                raise NoWorkingTime("в графике нет рабочего времени")
            for s, e in spans:
                if pending is not None and s < pending[1]:
                    s = pending[1]  # yesterday's night shift overlaps: count it once
                s = max(s, start)
                if e <= s:
                    continue
                if pending is not None:
                    yield pending
                pending = (s, e)

    def add(self, start: datetime, minutes: float | timedelta) -> datetime:
        """The moment when ``minutes`` of working time have passed since ``start``. With 0,
        the first working moment at or after ``start``."""
        remaining = minutes if isinstance(minutes, timedelta) else timedelta(minutes=minutes)
        if remaining < _ZERO:
            raise ValueError("отрицательное рабочее время")
        for s, e in self.walk(start):
            length = e - s
            if remaining <= length:
                return s + remaining
            remaining -= length
        raise AssertionError("unreachable: walk() is endless")

    def add_many(self, start: datetime, offsets: Sequence[timedelta]) -> list[datetime]:
        """``add`` for several offsets from the same start, walking the spans once (a deadline
        and its escalation steps)."""
        order = sorted(range(len(offsets)), key=lambda i: offsets[i])
        out: list[datetime] = [start] * len(offsets)
        if not order:
            return out
        if offsets[order[0]] < _ZERO:
            raise ValueError("отрицательное рабочее время")
        passed, k = _ZERO, 0
        for s, e in self.walk(start):
            length = e - s
            while k < len(order) and offsets[order[k]] - passed <= length:
                out[order[k]] = s + (offsets[order[k]] - passed)
                k += 1
            if k == len(order):
                return out
            passed += length
        raise AssertionError("unreachable: walk() is endless")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments; negative when ``end`` is before ``start``."""
        start, end = _aware(start), _aware(end)
        if end < start:
            return -self.elapsed(end, start)
        total = _ZERO
        for s, e in self.walk(start):
            if s >= end:
                break
            total += min(e, end) - s
        return total

    def is_working(self, moment: datetime) -> bool:
        moment = _aware(moment)
        day = self._local_date(moment)
        return any(s <= moment < e for d in (day - _DAY, day) for s, e in self.spans(d))


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are UTC (SQLite hands them back so)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
