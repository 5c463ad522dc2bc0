"""Small rule directories built in code, so each test shows the files it depends on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.types import AppealInput, AuthorInput, Decision

# Wednesday 12 November 2025, 11:00 in Moscow.
WEDNESDAY_11_MSK = datetime(2025, 11, 12, 8, 0, tzinfo=UTC)

BASE: dict[str, str] = {
    "ruleset.yaml": """\
name: test
default_timezone: Europe/Moscow
topic_min_score: 2
channels: [vk, telegram, twogis, tilda, mango, email]
region_fields:
  city: {}
  ivr_region: {"1": moscow, "2": samara}
line_fields: [line]
fallback:
  department: reserve
  employee: reserve
  target: {entity: deal, pipeline: 0, stage: UC_TRIAGE}
""",
    "topics.yaml": """\
topics:
  complaint_quality:
    title: Качество
    words: {просрочка: 3, просроченный: 3, "срок годности": 3, молоко: 1}
  vacancy:
    title: Вакансии
    words: {вакансия: 4, "ищу работу": 4, работа: 1}
  gratitude:
    title: Благодарность
    words: {спасибо: 2, благодарность: 3}
    negative: [заранее]
""",
    "regions.yaml": """\
regions:
  moscow:
    name: Москва
    timezone: Europe/Moscow
    area_codes: ["495", "499"]
    cities: [Москва, Зеленоград]
    sources: ["vk:club1"]
  samara:
    name: Самарская область
    timezone: Europe/Samara
    area_codes: ["846", "848"]
    cities: [Самара, Тольятти, {name: Отрадный, context: true}]
  tatarstan:
    name: Республика Татарстан
    timezone: Europe/Moscow
    area_codes: ["843", "855"]
    cities: [Казань, Набережные Челны]
    aliases: [Татарстан]
  nizhny:
    name: Нижегородская область
    timezone: Europe/Moscow
    area_codes: ["831"]
    cities: [Нижний Новгород, {name: Бор, context: true}]
""",
    "stores.csv": """\
id,region,city,address,vk,twogis,yandex,phone_line
1001,moscow,Москва,"ул. Ленина, 15",,2gis-1001,,+7 (495) 111-22-33
1002,samara,Самара,"ул. Ленина, 15",,2gis-1002,,
1003,samara,Тольятти,"пр-т Победы, 7а",club77,2gis-1003,,
1004,tatarstan,Казань,"ул. Баумана, 5",,2gis-1004,,+7 (843) 200-00-04
""",
    "departments.yaml": """\
departments:
  hotline:
    name: Горячая линия
    head: head
    target: {entity: deal, pipeline: 0, stage: NEW}
  quality:
    name: Качество
    head: qhead
    target: {entity: deal, pipeline: 1, stage: "C1:NEW"}
  reserve:
    name: Резерв
    head: reserve
""",
    "employees.csv": """\
id,name,bitrix_user_id,department,position,regions,topics,hours,timezone,absences,capacity
reserve,Резервная очередь,10,reserve,,*,*,круглосуточно,,,
head,Главная Анна,11,hotline,,*,*,пн-пт 09:00-18:00,Europe/Moscow,,
op1,Первый Оператор,12,hotline,,*,*,пн-вс 08:00-20:00,Europe/Moscow,,
op2,Второй Оператор,13,hotline,,*,*,пн-вс 08:00-20:00,Europe/Moscow,,
op3,Третий Оператор,14,hotline,,*,*,пн-вс 08:00-20:00,Europe/Moscow,,
qhead,Качество Глава,20,quality,,*,*,пн-пт 09:00-18:00,Europe/Moscow,,
qmsk,Качество Москва,21,quality,,moscow,*,пн-пт 09:00-18:00,Europe/Moscow,,
qsam,Качество Самара,22,quality,,samara,*,пн-пт 09:00-18:00,Europe/Samara,,
""",
    "pools.yaml": """\
pools:
  hotline:
    strategy: round_robin
    members: [op1, op2, op3]
  quality:
    strategy: least_open
    department: quality
    by_region: true
    fallback: [hotline]
""",
    "filters.yaml": """\
filters:
  - id: contest
    reason: Конкурс
    channel: [vk]
    hashtags: [конкурс]
  - id: spam
    reason: Спам
    patterns: ['казино']
  - id: blacklist
    reason: Чёрный список
    phones: ["+7 900 000-00-00"]
    platform_ids: ["vk:666"]
    emails: ["@spam.example"]
""",
    "rules.yaml": """\
rules:
  - id: quality
    when: {topic: complaint_quality}
    then: {department: quality, assign: {pool: quality}, stop: true}
  - id: other
    when: {topic: [vacancy, gratitude]}
    then: {department: hotline, assign: {pool: hotline}, stop: true}
""",
}


def files(**overrides: str) -> dict[str, str]:
    """The base directory with some files replaced (keys use _ for the dot: rules_yaml)."""
    result = dict(BASE)
    for key, text in overrides.items():
        name = key.replace("_yaml", ".yaml").replace("_csv", ".csv")
        result[name] = text
    return result


def compiled(**overrides: str) -> CompiledRuleSet:
    return compile_files(files(**overrides))


def rules(text: str) -> CompiledRuleSet:
    """The base directory with these rules (YAML list items, without the ``rules:`` line)."""
    return compiled(rules_yaml="rules:\n" + text)


def appeal(text: str = "", **kw: Any) -> AppealInput:
    author = AuthorInput(
        name=kw.pop("name", None),
        phone=kw.pop("phone", None),
        email=kw.pop("email", None),
        platform_id=kw.pop("platform_id", None),
    )
    kw.setdefault("channel", "vk")
    kw.setdefault("source", "club-unknown")
    kw.setdefault("kind", "message")
    return AppealInput(text=text, author=author, **kw)


def decide(
    ruleset: CompiledRuleSet,
    text: str = "",
    *,
    now: datetime = WEDNESDAY_11_MSK,
    state: MemoryAssignmentState | None = None,
    **kw: Any,
) -> Decision:
    return ruleset.decide(appeal(text, **kw), now=now, state=state or MemoryAssignmentState())


def step(decision: Decision, name: str) -> str:
    """The message of the trace step with this name (the first one)."""
    for item in decision.trace:
        if item.step == name:
            return item.message
    raise AssertionError(f"no {name!r} step in {[t.step for t in decision.trace]}")


def rule_ids(decision: Decision) -> list[str]:
    return [t.rule for t in decision.trace if t.step == "rule" and t.rule]
