"""sla.yaml: which target an appeal gets, its deadline in the responsible's working time, the
escalation plan, and every mistake at file:line."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.routing.compile import check_files
from hub.routing.sla import Duration, parse_duration
from tests.unit.routing.helpers import compiled, decide, files

MSK = ZoneInfo("Europe/Moscow")
SAMARA = ZoneInfo("Europe/Samara")
# Tuesday 3 November 2026, 17:50 in Moscow: the eve of a holiday (shortened) in the calendar.
EVE = datetime(2026, 11, 3, 17, 50, tzinfo=MSK)
# Routed the same day at 16:30 Moscow time, 17:30 in Samara: Samara's inspector is on duty.
ROUTED = datetime(2026, 11, 3, 16, 30, tzinfo=MSK)

CALENDAR = """\
calendars:
  ru:
    holidays:
      2026-11-04: День народного единства
    short_days:
      2026-11-03: Предпраздничный день
  samara:
    base: ru
    holidays:
      2026-11-05: Выдуманный праздник Самары
regions:
  samara: samara
"""

SLA = """\
hours: "пн-пт 09:00-18:00"
targets:
  - id: by-rule
    when: {rule: [other]}
    target: 2h
    escalation: gentle
  - id: complaints
    title: Жалобы
    when: {topic: complaint_quality}
    target: 30m
  - id: telegram
    when: {channel: telegram}
    target: 1d
  - id: default
    target: 4h
    hours: employee
escalations:
  standard:
    - {at: "80%", do: notify_assignee}
    - {at: "100%", do: reassign}
    - {at: "+1h", do: overdue_stage}
  gentle:
    - {at: "-30m", do: notify_assignee}
    - {at: "+2h", do: notify_head}
default_escalation: standard
overdue_stages:
  0: UC_OVERDUE
  1: "C1:UC_OVERDUE"
"""


def rs(sla: str = SLA, calendar: str = CALENDAR, **more: str):  # noqa: ANN201
    return compiled(sla_yaml=sla, calendar_yaml=calendar, **more)


def at(day: int, hour: int, minute: int = 0, zone: ZoneInfo = MSK) -> str:
    return datetime(2026, 11, day, hour, minute, tzinfo=zone).astimezone(UTC).isoformat()


class TestTargets:
    def test_topic_target_in_the_moscow_responsibles_time(self) -> None:
        d = decide(rs(), "Просроченное молоко в Москве", now=EVE, received_at=EVE)
        assert (d.topic, d.assignee.id) == ("complaint_quality", "qmsk")  # type: ignore[union-attr]
        assert d.sla_rule == "complaints" and d.sla_target_minutes == 30
        # 17:50 on a shortened day is after hours; the 4th is a holiday; so Thursday 09:30.
        assert d.reply_due_at == at(5, 9, 30)

    def test_the_responsibles_zone_and_region_calendar(self) -> None:
        d = decide(rs(), "Просроченное молоко в Самаре", now=ROUTED, received_at=EVE)
        assert d.assignee.id == "qsam"  # type: ignore[union-attr]
        # 17:50 Moscow is 18:50 in Samara; 4th federal, 5th Samara's own: Friday 09:30 there.
        assert d.reply_due_at == at(6, 9, 30, SAMARA)

    def test_the_first_matching_target_wins(self) -> None:
        d = decide(rs(), "Ищу работу, есть вакансия?", now=EVE, received_at=EVE)
        assert d.sla_rule == "by-rule" and d.sla_target_minutes == 120

    def test_channel_and_working_days(self) -> None:
        d = decide(rs(), "Привет", channel="telegram", now=EVE, received_at=EVE)
        assert d.sla_rule == "telegram" and d.sla_target_minutes == 540
        assert d.reply_due_at == at(5, 18, 0)  # a full working day from Thursday 09:00

    def test_default_target_with_the_employees_own_hours(self) -> None:
        # Nothing matches the rules: the reserve queue takes it, working round the clock.
        d = decide(rs(), "Просто привет", now=EVE, received_at=EVE)
        assert d.sla_rule == "default" and d.assignee.id == "reserve"  # type: ignore[union-attr]
        # Its hours are round the clock, which is not shortened on the eve: 4 hours later.
        assert d.reply_due_at == at(3, 21, 50)

    def test_received_at_is_the_start_not_the_routing_time(self) -> None:
        later = datetime(2026, 11, 9, 12, 0, tzinfo=MSK)
        d = decide(rs(), "Просроченное молоко в Москве", now=later, received_at=EVE)
        assert d.reply_due_at == at(5, 9, 30)

    def test_filtered_appeals_get_no_target(self) -> None:
        d = decide(rs(), "Лучшее казино", now=EVE, received_at=EVE)
        assert d.filtered and d.reply_due_at is None and d.escalation_plan == []

    def test_no_sla_file_no_deadline_and_no_trace_step(self) -> None:
        d = decide(compiled(), "Просроченное молоко в Москве", now=EVE, received_at=EVE)
        assert d.reply_due_at is None and "sla" not in [t.step for t in d.trace]

    def test_holidays_false_runs_through_holidays(self) -> None:
        sla = 'targets:\n  - id: all\n    target: 30m\n    hours: "ежедневно 09:00-18:00"\n'
        d = decide(rs(sla), "Просроченное молоко в Москве", now=EVE, received_at=EVE)
        assert d.reply_due_at == at(5, 9, 30)
        text = "Просроченное молоко в Москве"
        d = decide(rs(sla + "    holidays: false\n"), text, now=EVE, received_at=EVE)
        assert d.reply_due_at == at(4, 9, 20)  # no shortened eve either: 10 minutes on the 3rd


class TestPlanAndTrace:
    def test_plan_in_working_time(self) -> None:
        d = decide(rs(), "Просроченное молоко в Москве", now=EVE, received_at=EVE)
        assert [(p["do"], p["at"]) for p in d.escalation_plan] == [
            ("notify_assignee", at(5, 9, 24)),
            ("reassign", at(5, 9, 30)),
            ("overdue_stage", at(5, 10, 30)),
        ]
        assert d.escalation_plan[0]["label"] == "80%: напомнить ответственному"

    def test_shifts_before_the_deadline(self) -> None:
        d = decide(rs(), "Ищу работу, есть вакансия?", now=EVE, received_at=EVE)
        assert [(p["do"], p["at"]) for p in d.escalation_plan] == [
            ("notify_assignee", at(5, 10, 30)),
            ("notify_head", at(5, 13, 0)),
        ]

    def test_the_trace_explains_the_deadline(self) -> None:
        d = decide(rs(), "Просроченное молоко в Самаре", now=ROUTED, received_at=EVE)
        sla = next(t for t in d.trace if t.step == "sla")
        assert sla.rule == "complaints"
        assert "30 мин рабочего времени" in sla.message
        assert "пт 06.11.2026 09:30 (Europe/Samara)" in sla.message
        assert "календарь «samara»" in sla.message
        assert sla.data["zone"] == "Europe/Samara" and sla.data["calendar"] == "samara"


def problems_of(sla: str) -> list[str]:
    _model, problems = check_files(files(sla_yaml=sla, calendar_yaml=CALENDAR))
    return [str(p) for p in problems if p.file == "sla.yaml"]


class TestMistakes:
    def test_the_sample_like_file_is_clean(self) -> None:
        assert problems_of(SLA) == []

    def test_unknown_references(self) -> None:
        sla = (
            "targets:\n"
            "  - id: a\n"
            "    when: {topic: atlantis, department: nowhere, rule: ghost, colour: red}\n"
            "    target: 30m\n"
            "    escalation: loud\n"
            "  - id: b\n"
            "    target: 1h\n"
        )
        found = problems_of(sla)
        assert any("sla.yaml:3:" in p and "неизвестный ключ «colour»" in p for p in found)
        assert any("sla.yaml:3:" in p and "неизвестная тема «atlantis»" in p for p in found)
        assert any("sla.yaml:3:" in p and "неизвестный отдел «nowhere»" in p for p in found)
        assert any("sla.yaml:3:" in p and "неизвестное правило «ghost»" in p for p in found)
        assert any("sla.yaml:2:" in p and "нет эскалации «loud»" in p for p in found)

    def test_a_catch_all_must_be_last(self) -> None:
        sla = (
            "targets:\n  - id: all\n    target: 1h\n"
            "  - id: later\n    when: {topic: vacancy}\n    target: 2h\n"
        )
        assert any("sla.yaml:2:" in p and "без when" in p for p in problems_of(sla))

    def test_bad_durations_actions_and_order(self) -> None:
        sla = (
            "targets:\n"
            "  - id: a\n"
            "    target: полчаса\n"
            "  - id: b\n"
            "    target: 0\n"
            "escalations:\n"
            "  x:\n"
            "    - {at: '100%', do: shout}\n"
            "    - {at: '+1h', do: notify_head}\n"
            "    - {at: '50%', do: notify_assignee}\n"
            "    - {at: 'soon', do: reassign}\n"
        )
        found = problems_of(sla)
        assert any("sla.yaml:3:" in p and "не понимаю время «полчаса»" in p for p in found)
        assert any("sla.yaml:5:" in p and "больше нуля" in p for p in found)
        assert any("sla.yaml:8:" in p and "действие «shout»" in p for p in found)
        assert any("sla.yaml:10:" in p and "раньше предыдущего" in p for p in found)
        assert any("sla.yaml:11:" in p and "момент «soon»" in p for p in found)

    def test_overdue_stages(self) -> None:
        sla = (
            "targets:\n  - id: a\n    target: 1h\n"
            "escalations:\n  x:\n    - {at: '+1h', do: overdue_stage}\n"
            "default_escalation: x\n"
        )
        assert any("overdue_stage без overdue_stages" in p for p in problems_of(sla))
        wrong = sla + "overdue_stages:\n  1: 'C2:UC_OVERDUE'\n  x: NEW\n"
        found = problems_of(wrong)
        assert any("sla.yaml:8:" in p and "не из воронки 1" in p for p in found)
        assert any("sla.yaml:8:" in p and "«x» — номер воронки или lead" in p for p in found)

    def test_stages_are_checked_against_bitrix24_yaml(self) -> None:
        b24 = (
            "pipelines:\n  - id: 0\n    stages: [{id: NEW}, {id: UC_OVERDUE}]\n"
            "lead_statuses: [{id: NEW}]\nusers: ["
            + ", ".join(f"{{id: {i}}}" for i in (10, 11, 12, 13, 14, 20, 21, 22))
            + "]\n"
        )
        sla = "targets:\n  - id: a\n    target: 1h\noverdue_stages:\n  0: UC_LATE\n  lead: JUNK2\n"
        _model, problems = check_files(files(sla_yaml=sla, bitrix24_yaml=b24))
        found = [str(p) for p in problems if p.file == "sla.yaml"]
        assert any("стадии «UC_LATE» нет в воронке 0" in p for p in found)
        assert any("статуса лида «JUNK2» нет" in p for p in found)

    def test_no_targets(self) -> None:
        assert any("нет списка targets" in p for p in problems_of("hours: 'пн-пт 09:00-18:00'\n"))


class TestDuration:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30m", Duration(minutes=30)),
            ("30 мин", Duration(minutes=30)),
            ("4h", Duration(minutes=240)),
            ("1,5 ч", Duration(minutes=90)),
            ("1d", Duration(days=1)),
            ("2 рабочих дня", Duration(days=2)),
            (45, Duration(minutes=45)),
        ],
    )
    def test_spellings(self, text: object, expected: Duration) -> None:
        assert parse_duration(text) == expected

    def test_nonsense(self) -> None:
        with pytest.raises(ValueError, match="не понимаю"):
            parse_duration("скоро")

    def test_text(self) -> None:
        assert Duration(minutes=30).text() == "30 мин рабочего времени"
        assert Duration(minutes=120).text() == "2 ч рабочего времени"
        assert Duration(days=1).text(540) == "1 рабочий день (9 ч)"
        assert Duration(days=5).text() == "5 рабочих дней"
