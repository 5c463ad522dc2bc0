"""A rule directory's files -> ``RuleSetModel`` plus every problem found on the way.

Parsing never stops at the first error: an admin fixing a directory wants the whole list.
An item with an error is left out of the model; cross-references are checked later by
``hub.routing.validate`` on what survived.
"""

from __future__ import annotations

import re
from typing import Any

from hub.routing.calendar import parse_calendar
from hub.routing.fields import Reader
from hub.routing.model import (
    STRATEGIES,
    Bitrix24Map,
    City,
    Department,
    FilterDef,
    Pool,
    Region,
    RuleSetModel,
    Settings,
    Topic,
    Where,
)
from hub.routing.parse_rules import parse_rules
from hub.routing.parse_tables import parse_employees, parse_stores
from hub.routing.sla import parse_sla
from hub.routing.sources import Problems, YList, YMap, load_yaml

REQUIRED_FILES = (
    "ruleset.yaml",
    "topics.yaml",
    "regions.yaml",
    "stores.csv",
    "departments.yaml",
    "employees.csv",
    "pools.yaml",
    "filters.yaml",
    "rules.yaml",
)
OPTIONAL_FILES = ("bitrix24.yaml", "calendar.yaml", "sla.yaml")
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_files(files: dict[str, str]) -> tuple[RuleSetModel, Problems]:
    problems = Problems()
    model = RuleSetModel()
    for name in REQUIRED_FILES:
        if name not in files:
            problems.error(name, 1, "нет обязательного файла")

    def section(name: str, key: str) -> tuple[Reader, Any]:
        reader = Reader(name, problems)
        if name not in files:
            return reader, None
        data = load_yaml(name, files[name], problems)
        if data is None:
            return reader, None
        root = reader.mapping(data, name)
        if root is None:
            return reader, None
        if key:
            reader.keys(root, (key,), name)
            return reader, root.get(key)
        return reader, root

    reader, root = section("ruleset.yaml", "")
    if root is not None:
        model.settings = _settings(reader, root)
    reader, node = section("topics.yaml", "topics")
    model.topics = _topics(reader, node)
    reader, node = section("regions.yaml", "regions")
    model.regions = _regions(reader, node)
    reader, node = section("departments.yaml", "departments")
    model.departments = _departments(reader, node)
    reader, node = section("pools.yaml", "pools")
    model.pools = _pools(reader, node)
    reader, node = section("filters.yaml", "filters")
    model.filters = _filters(reader, node)
    reader, node = section("rules.yaml", "rules")
    model.rules = parse_rules(reader, node)
    if "bitrix24.yaml" in files:
        reader, root = section("bitrix24.yaml", "")
        model.bitrix24 = _bitrix24(reader, root)
    if "calendar.yaml" in files:  # reaction time: hub/routing/calendar.py, sla.py
        reader, root = section("calendar.yaml", "")
        model.calendar = parse_calendar(reader, root)
    if "sla.yaml" in files:
        reader, root = section("sla.yaml", "")
        model.sla = parse_sla(reader, root)
    if "stores.csv" in files:
        model.stores = parse_stores("stores.csv", files["stores.csv"], problems)
    if "employees.csv" in files:
        model.employees = parse_employees("employees.csv", files["employees.csv"], problems)
    return model, problems


def _entries(reader: Reader, node: Any, what: str) -> list[tuple[str, YMap]]:
    """``code: {…}`` pairs of a mapping section, with malformed codes reported."""
    section = reader.mapping(node, what)
    if section is None:
        return []
    out: list[tuple[str, YMap]] = []
    for code, body in section.items():
        if not isinstance(code, str) or not _CODE_RE.match(code):
            reader.error(section, code, f"{what}: код «{code}» — нужны латинские строчные и _")
            continue
        item = reader.mapping(body, f"{what} «{code}»", section.line_of(code))
        if body is None:
            reader.error(section, code, f"{what} «{code}»: пустое описание")
        if item is not None:
            item.line = section.line_of(code)  # an entry is found at its code
            out.append((code, item))
    return out


def _settings(reader: Reader, root: YMap) -> Settings:
    what = "ruleset.yaml"
    reader.keys(
        root,
        ("name", "default_timezone", "topic_min_score", "channels", "region_fields")
        + ("line_fields", "store_fields", "fallback"),
        what,
    )
    settings = Settings(where=reader.where(root))
    settings.name = reader.text(root, "name", what)
    settings.default_timezone = reader.text(root, "default_timezone", what) or "Europe/Moscow"
    settings.topic_min_score = reader.integer(root, "topic_min_score", what) or 2
    settings.channels = reader.strings(root, "channels", what)
    settings.line_fields = reader.strings(root, "line_fields", what) or ["line"]
    if "store_fields" in root:  # an empty list switches the store field off
        settings.store_fields = reader.strings(root, "store_fields", what)
    fields = root.get("region_fields")
    if fields is not None:
        mapping = reader.mapping(fields, "region_fields", root.line_of("region_fields"))
        for name, values in (mapping or {}).items():
            if values is None:
                settings.region_fields[str(name)] = {}
            elif isinstance(values, YMap):
                settings.region_fields[str(name)] = {str(k): str(v) for k, v in values.items()}
            else:
                reader.error(mapping, name, f"region_fields «{name}»: ожидался словарь или пусто")
    fallback = reader.mapping(root.get("fallback"), "fallback", root.line_of("fallback"))
    if fallback is None:
        reader.error(root, None, "нет раздела fallback: некому отдать нераспознанные обращения")
    else:
        reader.keys(fallback, ("employee", "department", "target"), "fallback")
        settings.fallback_employee = reader.text(fallback, "employee", "fallback", required=True)
        settings.fallback_department = reader.text(fallback, "department", "fallback")
        if "target" in fallback:
            settings.fallback_target = reader.target(
                fallback["target"], "fallback", fallback.line_of("target")
            )
    return settings


def _topics(reader: Reader, node: Any) -> list[Topic]:
    topics: list[Topic] = []
    for code, item in _entries(reader, node, "тема"):
        what = f"тема «{code}»"
        reader.keys(item, ("title", "words", "negative", "min_score"), what)
        words: dict[str, int] = {}
        lines: dict[str, int] = {}
        raw = item.get("words")
        if isinstance(raw, YMap):
            for word, weight in raw.items():
                if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                    reader.error(raw, word, f"{what}: вес слова «{word}» — целое число от 1")
                    continue
                words[str(word).strip()] = weight
                lines[str(word).strip()] = raw.line_of(word)
        elif isinstance(raw, list):
            words = {w: 1 for w in reader.strings(item, "words", what)}
        else:
            reader.error(item, None, f"{what}: нет словаря words")
        topics.append(
            Topic(
                code=code,
                title=reader.text(item, "title", what) or code,
                words=words,
                negative=reader.strings(item, "negative", what),
                min_score=reader.integer(item, "min_score", what),
                where=reader.where(item),
                word_lines=lines,
            )
        )
    return topics


def _regions(reader: Reader, node: Any) -> list[Region]:
    regions: list[Region] = []
    for code, item in _entries(reader, node, "регион"):
        what = f"регион «{code}»"
        reader.keys(item, ("name", "timezone", "area_codes", "cities", "aliases", "sources"), what)
        cities: list[City] = []
        raw = item.get("cities")
        if not isinstance(raw, YList) or not raw:
            reader.error(item, "cities" if raw is not None else None, f"{what}: нет списка cities")
            raw = YList()
        for index, city in enumerate(raw):
            where = Where(reader.file, raw.line_of(index))
            if isinstance(city, str):
                cities.append(City(city.strip(), False, where))
            elif isinstance(city, YMap) and isinstance(city.get("name"), str):
                reader.keys(city, ("name", "context"), what)
                cities.append(City(city["name"].strip(), reader.flag(city, "context", what), where))
            else:
                reader.problems.error(
                    reader.file, where.line, f"{what}: город — строка или {{name}}"
                )
        regions.append(
            Region(
                code=code,
                name=reader.text(item, "name", what, required=True) or code,
                timezone=reader.text(item, "timezone", what, required=True),
                area_codes=reader.strings(item, "area_codes", what),
                cities=cities,
                aliases=reader.strings(item, "aliases", what),
                sources=reader.strings(item, "sources", what),
                where=reader.where(item),
            )
        )
    return regions


def _departments(reader: Reader, node: Any) -> list[Department]:
    departments: list[Department] = []
    for code, item in _entries(reader, node, "отдел"):
        what = f"отдел «{code}»"
        reader.keys(item, ("name", "head", "target"), what)
        target = None
        if "target" in item:
            target = reader.target(item["target"], what, item.line_of("target"))
        departments.append(
            Department(
                code=code,
                name=reader.text(item, "name", what, required=True) or code,
                head=reader.text(item, "head", what),
                target=target,
                where=reader.where(item),
            )
        )
    return departments


def _pools(reader: Reader, node: Any) -> list[Pool]:
    pools: list[Pool] = []
    for code, item in _entries(reader, node, "пул"):
        what = f"пул «{code}»"
        reader.keys(
            item,
            ("title", "strategy", "members", "department", "by_region", "by_topic", "fallback"),
            what,
        )
        strategy = reader.text(item, "strategy", what) or "round_robin"
        if strategy not in STRATEGIES:
            reader.error(item, "strategy", f"{what}: стратегия «{strategy}» — одна из {STRATEGIES}")
        pools.append(
            Pool(
                code=code,
                title=reader.text(item, "title", what) or code,
                strategy=strategy,
                members=reader.strings(item, "members", what),
                department=reader.text(item, "department", what),
                by_region=reader.flag(item, "by_region", what),
                by_topic=reader.flag(item, "by_topic", what),
                fallback=reader.strings(item, "fallback", what),
                where=reader.where(item),
            )
        )
    return pools


_FILTER_KEYS = ("id", "reason", "channel", "kind", "hashtags", "words", "patterns")
_FILTER_KEYS += ("phones", "platform_ids", "emails")


def _filters(reader: Reader, node: Any) -> list[FilterDef]:
    if node is None:
        return []
    if not isinstance(node, list):
        reader.error(node, None, "filters: ожидался список")
        return []
    filters: list[FilterDef] = []
    for index, raw in enumerate(node):
        item = reader.mapping(raw, "фильтр", node.line_of(index) if isinstance(node, YList) else 1)
        if item is None:
            continue
        fid = reader.text(item, "id", "фильтр", required=True)
        what = f"фильтр «{fid}»"
        reader.keys(item, _FILTER_KEYS, what)
        filters.append(
            FilterDef(
                id=fid,
                reason=reader.text(item, "reason", what, required=True),
                channels=reader.strings(item, "channel", what),
                kinds=reader.strings(item, "kind", what),
                hashtags=[h.lstrip("#") for h in reader.strings(item, "hashtags", what)],
                words=reader.strings(item, "words", what),
                patterns=reader.strings(item, "patterns", what),
                phones=reader.strings(item, "phones", what),
                platform_ids=reader.strings(item, "platform_ids", what),
                emails=reader.strings(item, "emails", what),
                where=reader.where(item),
            )
        )
    return filters


def _bitrix24(reader: Reader, root: Any) -> Bitrix24Map:
    result = Bitrix24Map(present=True)
    if not isinstance(root, YMap):
        return result
    reader.keys(root, ("portal", "pipelines", "lead_statuses", "users"), "bitrix24.yaml")
    for item in root.get("pipelines") or []:
        if isinstance(item, YMap) and isinstance(item.get("id"), int):
            stages = {str(s.get("id")) for s in item.get("stages") or [] if isinstance(s, YMap)}
            result.stages[item["id"]] = stages
        else:
            reader.error(item, None, "bitrix24.yaml: воронка без целого id")
    for item in root.get("lead_statuses") or []:
        if isinstance(item, YMap) and item.get("id"):
            result.lead_statuses.add(str(item["id"]))
    for item in root.get("users") or []:
        if isinstance(item, YMap) and isinstance(item.get("id"), int):
            result.users.add(item["id"])
        else:
            reader.error(item, None, "bitrix24.yaml: пользователь без целого id")
    return result
