"""Cross-references and dead rules: what a parsed directory must satisfy before it is used."""

from __future__ import annotations

import re
from collections import Counter

from hub.routing.calendar import check_calendar
from hub.routing.model import RuleSetModel, TargetSpec, Where
from hub.routing.rule_checks import check_rules
from hub.routing.schedule import zone
from hub.routing.sla import check_sla
from hub.routing.sources import Problems
from hub.routing.text import fold, is_known_word, parse_phone

_AREA_RE = re.compile(r"^\d{3,5}$")
_SOURCE_RE = re.compile(r"^[a-z0-9_]+:.+$")


def validate(model: RuleSetModel, problems: Problems) -> None:
    ids = _Ids(model)
    _settings(model, ids, problems)
    _topics(model, problems)
    _regions(model, problems)
    _stores(model, ids, problems)
    _people(model, ids, problems)
    _pools(model, ids, problems)
    _filters(model, problems)
    check_rules(model, problems, check_target=lambda t, w: check_target(model, t, w, problems))
    if model.calendar is not None:  # reaction time: calendar.yaml and sla.yaml
        check_calendar(model.calendar, ids.regions, problems)
    if model.sla is not None:
        check_sla(model, model.sla, problems)


class _Ids:
    def __init__(self, model: RuleSetModel) -> None:
        self.regions = {r.code for r in model.regions}
        self.topics = {t.code for t in model.topics}
        self.departments = {d.code for d in model.departments}
        self.employees = {e.id for e in model.employees}
        self.pools = {p.code for p in model.pools}


def _bad_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return True
    return False


def check_target(model: RuleSetModel, target: TargetSpec, where: Where, problems: Problems) -> None:
    """Against bitrix24.yaml, when the directory has one: the portal must have the stage."""
    b24 = model.bitrix24
    if not b24.present:
        return
    if target.entity == "lead":
        if target.stage and target.stage not in b24.lead_statuses:
            problems.error(
                where.file, where.line, f"статуса лида «{target.stage}» нет в bitrix24.yaml"
            )
        return
    pipeline = target.pipeline or 0
    if pipeline not in b24.stages:
        problems.error(where.file, where.line, f"воронки {pipeline} нет в bitrix24.yaml")
    elif target.stage and target.stage not in b24.stages[pipeline]:
        problems.error(
            where.file,
            where.line,
            f"стадии «{target.stage}» нет в воронке {pipeline} (bitrix24.yaml)",
        )


def _settings(model: RuleSetModel, ids: _Ids, problems: Problems) -> None:
    s, w = model.settings, model.settings.where
    if _bad_zone(s.default_timezone):
        problems.error(w.file, w.line, f"неизвестный часовой пояс «{s.default_timezone}»")
    if s.fallback_employee and s.fallback_employee not in ids.employees:
        problems.error(w.file, w.line, f"fallback: нет сотрудника «{s.fallback_employee}»")
    if s.fallback_department and s.fallback_department not in ids.departments:
        problems.error(w.file, w.line, f"fallback: нет отдела «{s.fallback_department}»")
    if s.fallback_target:
        check_target(model, s.fallback_target, s.fallback_target.where, problems)
    for name, values in s.region_fields.items():
        for value, region in values.items():
            if region not in ids.regions:
                problems.error(
                    w.file,
                    w.line,
                    f"region_fields.{name}: «{value}» → неизвестный регион «{region}»",
                )


def _topics(model: RuleSetModel, problems: Problems) -> None:
    for topic in model.topics:
        w = topic.where
        if not topic.words:
            problems.error(w.file, w.line, f"тема «{topic.code}»: пустой словарь — не сработает")
        for word in list(topic.words) + topic.negative:
            if " " not in word.strip() and not is_known_word(word):
                line = topic.word_lines.get(word, w.line)
                problems.warning(
                    w.file,
                    line,
                    f"тема «{topic.code}»: слова «{word}» нет в словаре pymorphy3 — "
                    "формы подбираются по догадке, проверьте на примерах",
                )


def _regions(model: RuleSetModel, problems: Problems) -> None:
    area_owner: dict[str, str] = {}
    city_owner: dict[str, str] = {}
    source_owner: dict[str, str] = {}
    for region in model.regions:
        w = region.where
        if _bad_zone(region.timezone):
            problems.error(
                w.file, w.line, f"регион «{region.code}»: неизвестный пояс «{region.timezone}»"
            )
        for code in region.area_codes:
            if not _AREA_RE.match(code):
                problems.error(w.file, w.line, f"регион «{region.code}»: код «{code}» — 3–5 цифр")
            elif code.startswith("9") or code.startswith("80"):
                problems.error(w.file, w.line, f"регион «{region.code}»: {code} — не городской код")
            elif code in area_owner:
                problems.error(w.file, w.line, f"код {code} уже у региона «{area_owner[code]}»")
            else:
                area_owner[code] = region.code
        for city in region.cities:
            key = fold(city.name)
            if key in city_owner and city_owner[key] != region.code:
                problems.error(
                    city.where.file,
                    city.where.line,
                    f"город «{city.name}» уже в «{city_owner[key]}»",
                )
            city_owner[key] = region.code
        for source in region.sources:
            if not _SOURCE_RE.match(source):
                problems.error(w.file, w.line, f"источник «{source}» — пишите канал:id")
            elif source in source_owner:
                problems.error(
                    w.file, w.line, f"источник «{source}» уже у «{source_owner[source]}»"
                )
            else:
                source_owner[source] = region.code


def _stores(model: RuleSetModel, ids: _Ids, problems: Problems) -> None:
    cities = {r.code: {fold(c.name) for c in r.cities} for r in model.regions}
    seen: dict[str, int] = {}
    sources: dict[tuple[str, str], str] = {}
    lines: dict[str, str] = {}
    for store in model.stores:
        w = store.where
        if store.id in seen:
            problems.error(
                w.file, w.line, f"id магазина «{store.id}» повторяется (строка {seen[store.id]})"
            )
            continue
        seen[store.id] = w.line
        if store.region not in ids.regions:
            problems.error(
                w.file, w.line, f"магазин {store.id}: неизвестный регион «{store.region}»"
            )
        elif fold(store.city) not in cities[store.region]:
            problems.error(
                w.file,
                w.line,
                f"магазин {store.id}: города «{store.city}» нет в регионе {store.region}",
            )
        if not store.address:
            problems.error(w.file, w.line, f"магазин {store.id}: нет адреса")
        for channel, source in store.sources.items():
            if (channel, source) in sources:
                other = sources[(channel, source)]
                problems.error(w.file, w.line, f"{channel}:{source} уже у магазина {other}")
            sources[(channel, source)] = store.id
        phone = parse_phone(store.phone_line) if store.phone_line else None
        if phone is not None:
            if phone.e164 in lines:
                other = lines[phone.e164]
                problems.error(w.file, w.line, f"линия {store.phone_line} уже у магазина {other}")
            lines[phone.e164] = store.id


def _people(model: RuleSetModel, ids: _Ids, problems: Problems) -> None:
    counts = Counter(e.id for e in model.employees)
    bitrix: dict[int, str] = {}
    for emp in model.employees:
        w, what = emp.where, f"сотрудник {emp.id}"
        if counts[emp.id] > 1:
            problems.error(w.file, w.line, f"{what}: id повторяется")
        if emp.department not in ids.departments:
            problems.error(w.file, w.line, f"{what}: неизвестный отдел «{emp.department}»")
        for region in emp.regions:
            if region != "*" and region not in ids.regions:
                problems.error(w.file, w.line, f"{what}: неизвестный регион «{region}»")
        for topic in emp.topics:
            if topic != "*" and topic not in ids.topics:
                problems.error(w.file, w.line, f"{what}: неизвестная тема «{topic}»")
        if emp.timezone and _bad_zone(emp.timezone):
            problems.error(w.file, w.line, f"{what}: неизвестный часовой пояс «{emp.timezone}»")
        if emp.bitrix_user_id is not None:
            if emp.bitrix_user_id in bitrix:
                problems.error(
                    w.file,
                    w.line,
                    f"{what}: bitrix_user_id {emp.bitrix_user_id} "
                    f"уже у {bitrix[emp.bitrix_user_id]}",
                )
            bitrix[emp.bitrix_user_id] = emp.id
            if model.bitrix24.present and emp.bitrix_user_id not in model.bitrix24.users:
                problems.error(
                    w.file, w.line, f"{what}: пользователя {emp.bitrix_user_id} нет в bitrix24.yaml"
                )
    for dept in model.departments:
        w = dept.where
        if dept.head and dept.head not in ids.employees:
            problems.error(
                w.file, w.line, f"отдел «{dept.code}»: руководитель «{dept.head}» не найден"
            )
        if dept.target:
            check_target(model, dept.target, dept.target.where, problems)


def _pools(model: RuleSetModel, ids: _Ids, problems: Problems) -> None:
    by_code = {p.code: p for p in model.pools}
    for pool in model.pools:
        w, what = pool.where, f"пул «{pool.code}»"
        if not pool.members and not pool.department:
            problems.error(w.file, w.line, f"{what}: нет ни members, ни department — пул пуст")
        if pool.department and pool.department not in ids.departments:
            problems.error(w.file, w.line, f"{what}: неизвестный отдел «{pool.department}»")
        for member in pool.members:
            if member not in ids.employees:
                problems.error(w.file, w.line, f"{what}: нет сотрудника «{member}»")
        for other in pool.fallback:
            if other not in ids.pools:
                problems.error(w.file, w.line, f"{what}: резервный пул «{other}» не найден")
        # A fallback chain that returns to its start would loop: report each cycle once.
        path, current = [pool.code], pool
        while current.fallback:
            nxt = next((f for f in current.fallback if f in by_code), None)
            if nxt is None:
                break
            if nxt in path:
                if nxt == pool.code:
                    problems.error(
                        w.file, w.line, f"{what}: цикл резервных пулов {' → '.join(path + [nxt])}"
                    )
                break
            path.append(nxt)
            current = by_code[nxt]


def _filters(model: RuleSetModel, problems: Problems) -> None:
    seen: set[str] = set()
    channels = set(model.settings.channels)
    for flt in model.filters:
        w, what = flt.where, f"фильтр «{flt.id}»"
        if flt.id in seen:
            problems.error(w.file, w.line, f"{what}: id повторяется")
        seen.add(flt.id)
        if not (
            flt.hashtags
            or flt.words
            or flt.patterns
            or flt.phones
            or flt.platform_ids
            or flt.emails
        ):
            problems.error(
                w.file, w.line, f"{what}: нет ни одного признака — не отфильтрует ничего"
            )
        for pattern in flt.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.error(
                    w.file, w.line, f"{what}: шаблон «{pattern}» не компилируется: {exc}"
                )
        for phone in flt.phones:
            if parse_phone(phone) is None:
                problems.error(w.file, w.line, f"{what}: «{phone}» — не телефонный номер")
        for channel in flt.channels:
            if channels and channel not in channels:
                problems.error(w.file, w.line, f"{what}: неизвестный канал «{channel}»")
