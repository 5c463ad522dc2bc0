"""The rule directory as plain data, each item with the file and line it came from.

Parsing (``hub.routing.parse``) fills these; validation and compilation read them. They
hold what an admin wrote, already type-checked, but not yet lemmatised or indexed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # parsed by their own modules, which import this one
    from hub.routing.calendar import CalendarSet
    from hub.routing.sla import SlaModel

KINDS = ("message", "comment", "review", "call", "form", "email")
STRATEGIES = ("round_robin", "least_open", "first_available")
ENTITIES = ("deal", "lead")
UNKNOWN = "unknown"  # a region or topic condition value: "not determined"
DEFAULT_STORE_FIELDS = ("store", "store_id", "магазин")


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Settings:
    name: str = ""
    default_timezone: str = "Europe/Moscow"
    topic_min_score: int = 2
    channels: list[str] = field(default_factory=list)  # empty: any channel name is accepted
    region_fields: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> value map
    line_fields: list[str] = field(default_factory=lambda: ["line"])
    # Fields where the customer chose a store by its id (a site form's «Магазин» list).
    store_fields: list[str] = field(default_factory=lambda: list(DEFAULT_STORE_FIELDS))
    fallback_employee: str = ""
    fallback_department: str = ""
    fallback_target: TargetSpec | None = None
    where: Where = Where("ruleset.yaml", 1)


@dataclass
class Topic:
    code: str
    title: str
    words: dict[str, int]  # entry (word or phrase) -> weight
    negative: list[str]
    min_score: int | None
    where: Where
    word_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class City:
    name: str
    needs_context: bool  # «Владимир», «Орёл»: only after «в», «из», «г.»…
    where: Where


@dataclass
class Region:
    code: str
    name: str
    timezone: str
    area_codes: list[str]
    cities: list[City]
    aliases: list[str]  # other names found in text: «Подмосковье», «Питер»
    sources: list[str]  # "channel:source" that belong to the whole region
    where: Where


@dataclass
class Store:
    id: str
    region: str
    city: str
    address: str
    sources: dict[str, str]  # channel -> source id (vk, twogis, yandex)
    phone_line: str
    where: Where


@dataclass
class TargetSpec:
    entity: str
    pipeline: int | None
    stage: str | None
    where: Where


@dataclass
class Department:
    code: str
    name: str
    head: str
    target: TargetSpec | None
    where: Where


@dataclass
class Interval:
    weekdays: frozenset[int]  # 0 = Monday
    start: time
    end: time  # end <= start: the shift runs past midnight


@dataclass
class Employee:
    id: str
    name: str
    bitrix_user_id: int | None
    department: str
    position: str
    regions: list[str]  # ["*"]: every region
    topics: list[str]  # ["*"]: every topic
    hours: list[Interval]  # empty: always on duty
    hours_text: str
    timezone: str  # empty: the first region's zone, else the default
    absences: list[tuple[date, date]]
    capacity: int | None
    where: Where


@dataclass
class Pool:
    code: str
    title: str
    strategy: str
    members: list[str]  # explicit employee ids, in order
    department: str  # members: the whole department when no list is given
    by_region: bool  # only members who cover the appeal's region
    by_topic: bool
    fallback: list[str]  # pools tried next, in order
    where: Where


@dataclass
class FilterDef:
    id: str
    reason: str
    channels: list[str]
    kinds: list[str]
    hashtags: list[str]
    words: list[str]
    patterns: list[str]
    phones: list[str]
    platform_ids: list[str]
    emails: list[str]
    where: Where


@dataclass
class Condition:
    """One key of a rule's ``when``: ``name`` is the key, ``value`` already type-checked."""

    name: str
    value: Any
    where: Where


@dataclass
class Actions:
    topic: str | None = None
    region: str | None = None
    department: str | None = None
    assign_employee: str | None = None
    assign_pool: str | None = None
    target: TargetSpec | None = None
    tags: list[str] = field(default_factory=list)
    filter: str | None = None
    stop: bool = False
    lines: dict[str, int] = field(default_factory=dict)  # action -> line, for messages


@dataclass
class Rule:
    id: str
    title: str
    conditions: list[Condition]
    actions: Actions
    where: Where


@dataclass
class Bitrix24Map:
    """bitrix24.yaml: what the portal must contain for the targets and users to exist."""

    stages: dict[int, set[str]] = field(default_factory=dict)  # pipeline -> stage ids
    lead_statuses: set[str] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    present: bool = False


@dataclass
class RuleSetModel:
    settings: Settings = field(default_factory=Settings)
    topics: list[Topic] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    departments: list[Department] = field(default_factory=list)
    employees: list[Employee] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    filters: list[FilterDef] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    bitrix24: Bitrix24Map = field(default_factory=Bitrix24Map)
    # Optional calendar.yaml and sla.yaml (reaction time): None when the file is absent.
    calendar: CalendarSet | None = None
    sla: SlaModel | None = None
