"""calendar.yaml: the production calendar, federal and regional, as data the admin edits.

Russia's non-working days change every year (the government moves weekends that coincide
with holidays, Labour Code art. 112) and differ by region (Tatarstan and Bashkortostan rest on
Uraza Bayram and Kurban Bayram, each republic on its own day), so they cannot be computed: they
are written down, one date or range per line, with the reason. A regional calendar names its
``base`` and adds its own days; ``regions`` says which region keeps which calendar.

```yaml
calendars:
  ru:
    name: Российская Федерация
    holidays:
      2026-01-01..2026-01-08: Новогодние каникулы и Рождество
    workdays: {}          # weekends made working by a transfer
    short_days:           # the eve of a holiday: one hour shorter
      2026-04-30: Предпраздничный день
  tatarstan:
    name: Республика Татарстан
    base: ru
    holidays:
      2026-03-20: Ураза-байрам
regions:
  tatarstan: tatarstan
default: ru
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hub.routing.fields import Reader
from hub.routing.model import Where
from hub.routing.sources import Problems, YMap

FILE = "calendar.yaml"
_KINDS = ("holidays", "workdays", "short_days")
_MAX_RANGE_DAYS = 366


@dataclass
class Calendar:
    """One calendar with its base's days already merged in (``days`` say why, for the trace)."""

    code: str
    name: str
    base: str
    holidays: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)
    short_days: dict[date, str] = field(default_factory=dict)
    where: Where = Where(FILE, 1)
    lines: dict[tuple[str, date], int] = field(default_factory=dict)  # (kind, day) -> line

    def is_working_day(self, day: date, weekdays: frozenset[int] = frozenset(range(5))) -> bool:
        """A production-calendar working day for a week of ``weekdays`` (Monday = 0)."""
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() in weekdays

    def years(self) -> set[int]:
        return {d.year for kind in (self.holidays, self.workdays, self.short_days) for d in kind}


@dataclass
class CalendarSet:
    calendars: dict[str, Calendar] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)  # region code -> calendar code
    default: str = ""
    region_lines: dict[str, int] = field(default_factory=dict)
    where: Where = Where(FILE, 1)

    def for_region(self, region: str | None) -> Calendar | None:
        code = self.regions.get(region or "", self.default)
        return self.calendars.get(code)


def parse_calendar(reader: Reader, root: Any) -> CalendarSet:
    """The file's calendars with bases merged; problems go to ``reader`` with their lines."""
    result = CalendarSet()
    if not isinstance(root, YMap):
        if root is not None:
            reader.error(root, None, "calendar.yaml: ожидался словарь")
        return result
    reader.keys(root, ("calendars", "regions", "default"), FILE)
    result.where = reader.where(root)
    own: dict[str, Calendar] = {}
    calendars = reader.mapping(root.get("calendars"), "calendars", root.line_of("calendars"))
    if calendars is None:
        reader.error(root, None, "calendar.yaml: нет раздела calendars")
        calendars = YMap()
    for code, body in calendars.items():
        item = reader.mapping(body, f"календарь «{code}»", calendars.line_of(code))
        if item is None:
            continue
        own[str(code)] = _calendar(reader, str(code), item, calendars.line_of(code))
    result.calendars = _merge(reader, own)
    regions = reader.mapping(root.get("regions"), "regions", root.line_of("regions"))
    for region, code in (regions or {}).items():
        result.regions[str(region)] = str(code)
        result.region_lines[str(region)] = regions.line_of(region) if regions else 1
        if str(code) not in own:
            reader.error(regions, region, f"регион «{region}»: нет календаря «{code}»")
    result.default = reader.text(root, "default", FILE) or ("ru" if "ru" in own else "")
    if result.default and result.default not in own:
        reader.error(root, "default", f"default: нет календаря «{result.default}»")
    return result


def _calendar(reader: Reader, code: str, item: YMap, line: int) -> Calendar:
    what = f"календарь «{code}»"
    reader.keys(item, ("name", "base", *_KINDS), what)
    cal = Calendar(
        code=code,
        name=reader.text(item, "name", what) or code,
        base=reader.text(item, "base", what),
        where=Where(reader.file, line),
    )
    for kind in _KINDS:
        node = item.get(kind)
        if node is None:
            continue
        days = reader.mapping(node, f"{what}: {kind}", item.line_of(kind))
        for key, reason in (days or {}).items():
            key_line = days.line_of(key) if days else line
            try:
                first, last = parse_day_range(str(key))
            except ValueError as exc:
                reader.problems.error(reader.file, key_line, f"{what}: {exc}")
                continue
            text = "" if reason is None else str(reason).strip()
            target: dict[date, str] = getattr(cal, kind)
            day = first
            while day <= last:
                if day in target:
                    reader.problems.error(
                        reader.file, key_line, f"{what}: {day:%d.%m.%Y} уже указан в {kind}"
                    )
                target[day] = text
                cal.lines[(kind, day)] = key_line
                day += timedelta(days=1)
    return cal


def parse_day_range(text: str) -> tuple[date, date]:
    """``2026-01-09`` or ``2026-01-01..2026-01-08``; raises ValueError in Russian."""
    first_text, _, last_text = text.strip().partition("..")
    try:
        first = date.fromisoformat(first_text.strip())
        last = date.fromisoformat(last_text.strip()) if last_text else first
    except ValueError:
        example = "пишите 2026-01-09 или 2026-01-01..2026-01-08"
        raise ValueError(f"не понимаю дату «{text}» ({example})") from None
    if last < first:
        raise ValueError(f"«{text}»: конец раньше начала")
    if (last - first).days >= _MAX_RANGE_DAYS:
        raise ValueError(f"«{text}»: диапазон длиннее года")
    return first, last


def _merge(reader: Reader, own: dict[str, Calendar]) -> dict[str, Calendar]:
    """Each calendar with the days of its bases (a regional day wins over its base's)."""
    merged: dict[str, Calendar] = {}
    for code, cal in own.items():
        chain, current = [cal], cal
        while current.base:
            parent = own.get(current.base)
            if parent is None:
                reader.problems.error(
                    reader.file,
                    current.where.line,
                    f"календарь «{current.code}»: нет базового «{current.base}»",
                )
                break
            if parent in chain:
                path = " → ".join(c.code for c in chain) + f" → {parent.code}"
                reader.problems.error(reader.file, cal.where.line, f"цикл календарей: {path}")
                break
            chain.append(parent)
            current = parent
        out = Calendar(code, cal.name, cal.base, where=cal.where)
        for layer in reversed(chain):
            for kind in _KINDS:
                getattr(out, kind).update(getattr(layer, kind))
            out.lines.update(layer.lines)
        # A base's working weekend stays working only if the region did not make it a holiday.
        for day in list(out.workdays):
            if day in out.holidays and (("workdays", day) not in cal.lines):
                del out.workdays[day]
        merged[code] = out
    return merged


def check_calendar(cal_set: CalendarSet, region_codes: set[str], problems: Problems) -> None:
    """Cross-checks: known regions, no day both a holiday and a working weekend, shortened
    days that are working days, working weekends that are weekends."""
    for region, line in cal_set.region_lines.items():
        if region not in region_codes:
            problems.error(FILE, line, f"regions: неизвестный регион «{region}»")
    for cal in cal_set.calendars.values():
        what = f"календарь «{cal.code}»"
        for day in sorted(set(cal.holidays) & set(cal.workdays)):
            line = cal.lines.get(("workdays", day), cal.where.line)
            problems.error(FILE, line, f"{what}: {day:%d.%m.%Y} и выходной, и рабочий")
        for day in sorted(cal.short_days):
            line = cal.lines.get(("short_days", day), cal.where.line)
            if not cal.is_working_day(day):
                problems.error(FILE, line, f"{what}: сокращённый день {day:%d.%m.%Y} — не рабочий")
        for day in sorted(cal.workdays):
            line = cal.lines.get(("workdays", day), cal.where.line)
            if day.weekday() < 5:
                problems.warning(
                    FILE, line, f"{what}: {day:%d.%m.%Y} — будний день, он и так рабочий"
                )
