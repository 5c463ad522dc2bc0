"""Checks of rules.yaml: references to the rest of the directory and rules that can never match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.routing.model import KINDS, UNKNOWN, Condition, Rule, RuleSetModel, TargetSpec, Where
from hub.routing.sources import Problems
from hub.routing.text import entry_lemmas, tokens

# Conditions on state that a rule's actions can change between two rules.
_MUTABLE = {"region", "topic"}
_SET_CONDITIONS = ("channel", "source", "kind", "region", "topic", "hashtags", "words")


def check_rules(
    model: RuleSetModel,
    problems: Problems,
    *,
    check_target: Callable[[TargetSpec, Where], None],
) -> None:
    regions = {r.code for r in model.regions} | {UNKNOWN}
    topics = {t.code for t in model.topics} | {UNKNOWN}
    departments = {d.code for d in model.departments}
    employees = {e.id for e in model.employees}
    pools = {p.code for p in model.pools}
    channels = set(model.settings.channels)
    seen: dict[str, int] = {}
    for index, rule in enumerate(model.rules):
        w, what = rule.where, f"правило «{rule.id}»"

        def err(message: str, where: Where = w, what: str = what) -> None:
            problems.error(where.file, where.line, f"{what}: {message}")

        if rule.id in seen:
            err(f"id повторяется (первое на строке {seen[rule.id]})")
        seen.setdefault(rule.id, w.line)
        for cond in rule.conditions:
            values = cond.value if isinstance(cond.value, list) else []
            if cond.name == "region":
                for code in values:
                    if code not in regions:
                        err(f"неизвестный регион «{code}»", cond.where)
            elif cond.name == "topic":
                for code in values:
                    if code not in topics:
                        err(f"неизвестная тема «{code}»", cond.where)
            elif cond.name == "channel" and channels:
                for name in values:
                    if name not in channels:
                        err(f"неизвестный канал «{name}»", cond.where)
        a = rule.actions
        for key, value, known, label in (
            ("topic", a.topic, topics - {UNKNOWN}, "неизвестная тема"),
            ("region", a.region, regions - {UNKNOWN}, "неизвестный регион"),
            ("department", a.department, departments, "неизвестный отдел"),
            ("assign", a.assign_employee, employees, "неизвестный сотрудник"),
            ("assign", a.assign_pool, pools, "неизвестный пул"),
        ):
            if value and value not in known:
                err(f"then: {label} «{value}»", Where(w.file, a.lines.get(key, w.line)))
        if a.target:
            check_target(a.target, a.target.where)
        reason = never_matches(rule.conditions)
        if reason is None:
            reason = _shadowed(model.rules, index)
        if reason:
            err(f"никогда не сработает: {reason}")


def never_matches(conditions: list[Condition]) -> str | None:
    """Why these conditions cannot all hold at once, or None."""
    by_name = {c.name: c.value for c in conditions}
    for cond in conditions:
        if isinstance(cond.value, list) and not cond.value:
            return f"пустой список в «{cond.name}»"
    rating = by_name.get("rating")
    if rating is not None:
        low, high = rating
        if low > high:
            return f"рейтинг от {low} до {high}"
        if high < 1 or low > 5:
            return f"рейтинг {low}–{high} вне 1–5"
        kinds = by_name.get("kind")
        if kinds is not None and "review" not in kinds:
            return "рейтинг бывает только у отзывов (kind: review), а вид отзыв исключён"
    kinds = by_name.get("kind")
    if kinds is not None and not set(kinds) & set(KINDS):
        return "ни один из видов не существует"
    required = _lemma_sets(by_name.get("all_words", []))
    forbidden = _lemma_sets(by_name.get("not_words", []))
    for word, lemmas in required.items():
        for bad, bad_lemmas in forbidden.items():
            if lemmas and lemmas <= bad_lemmas:
                return f"слово «{word}» одновременно обязательно и запрещено («{bad}»)"
    anyof = _lemma_sets(by_name.get("words", []))
    if (
        anyof
        and forbidden
        and all(any(lem and lem <= bad for bad in forbidden.values()) for lem in anyof.values())
    ):
        return "все слова из words запрещены в not_words"
    return None


def _lemma_sets(words: list[str]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for word in words:
        parts = tokens(word)
        if len(parts) == 1:
            out[word] = entry_lemmas(parts[0])
    return out


def _shadowed(rules: list[Rule], index: int) -> str | None:
    """An earlier stopping rule whose conditions are implied by this rule's takes every appeal
    this rule could get, unless a rule in between can change the region or topic it tests."""
    rule = rules[index]
    mine = {c.name: c.value for c in rule.conditions}
    for earlier_index in range(index - 1, -1, -1):
        earlier = rules[earlier_index]
        if not (earlier.actions.stop or earlier.actions.filter):
            continue
        between = rules[earlier_index + 1 : index]
        if all(_implied(c, mine, between) for c in earlier.conditions):
            return (
                f"правило «{earlier.id}» (строка {earlier.where.line}) раньше забирает "
                "все такие обращения и останавливает разбор"
            )
    return None


def _implied(cond: Condition, mine: dict[str, Any], between: list[Rule]) -> bool:
    if cond.name in _MUTABLE and any(getattr(r.actions, cond.name) is not None for r in between):
        return False
    if cond.name not in mine:
        return False
    value = mine[cond.name]
    if cond.name in _SET_CONDITIONS:
        return set(value) <= set(cond.value)
    if cond.name == "rating":
        return cond.value[0] <= value[0] and value[1] <= cond.value[1]
    if cond.name == "weekdays":
        return value <= cond.value
    return value == cond.value
