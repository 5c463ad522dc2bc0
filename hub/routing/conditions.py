"""Rule conditions compiled to predicates over an appeal's facts and the decision so far.

Every predicate is built once per rule set: word entries become lemma sets, patterns are
compiled, lists become frozensets. Cheap checks are ordered first so a rule that does not
apply is dropped after a set lookup or two.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Protocol

from hub.routing.facts import Facts, phrase_at
from hub.routing.model import UNKNOWN, Condition
from hub.routing.schedule import DAY_LABELS, in_time_range
from hub.routing.text import fold, parse_phone, phrase


class State(Protocol):
    """The part of a decision in progress that conditions may read."""

    region: str | None
    topic: str | None

    def local_time(self) -> datetime: ...


Check = Callable[[Facts, State], bool]


@dataclass
class CompiledCondition:
    name: str
    check: Check
    label: str  # Russian, for the trace
    cost: int = 1


@dataclass(frozen=True)
class WordSet:
    """Entries of a ``words`` list: single words by lemma, phrases as lemma sequences."""

    singles: frozenset[str]
    phrases: tuple[tuple[frozenset[str], ...], ...]
    entries: tuple[tuple[str, tuple[frozenset[str], ...]], ...] = field(default=())

    @classmethod
    def of(cls, words: list[str]) -> WordSet:
        singles: set[str] = set()
        phrases: list[tuple[frozenset[str], ...]] = []
        entries = []
        for word in words:
            seq = phrase(word)
            if not seq:
                continue
            entries.append((word, seq))
            if len(seq) == 1:
                singles |= seq[0]
            else:
                phrases.append(seq)
        return cls(frozenset(singles), tuple(phrases), tuple(entries))

    def any_in(self, facts: Facts) -> bool:
        if not self.singles.isdisjoint(facts.lemmas):
            return True
        return any(self._phrase_in(facts, seq) for seq in self.phrases)

    @staticmethod
    def _phrase_in(facts: Facts, seq: tuple[frozenset[str], ...]) -> bool:
        if seq[0].isdisjoint(facts.lemmas):
            return False
        return any(phrase_at(facts.lemma_sets, i, seq) for i in range(len(facts.lemma_sets)))

    def all_in(self, facts: Facts) -> bool:
        for _word, seq in self.entries:
            if len(seq) == 1:
                if seq[0].isdisjoint(facts.lemmas):
                    return False
            elif not self._phrase_in(facts, seq):
                return False
        return True


def compile_condition(cond: Condition) -> CompiledCondition:
    return _BUILDERS[cond.name](cond.value)


def _set_of(values: list[str]) -> frozenset[str]:
    return frozenset(values)


def _channel(value: list[str]) -> CompiledCondition:
    wanted = _set_of(value)
    return CompiledCondition(
        "channel", lambda f, s: f.appeal.channel in wanted, f"канал {_list(value)}", 0
    )


def _source(value: list[str]) -> CompiledCondition:
    wanted = _set_of(value)

    def check(f: Facts, s: State) -> bool:
        a = f.appeal
        return a.source in wanted or f"{a.channel}:{a.source}" in wanted

    return CompiledCondition("source", check, f"источник {_list(value)}", 0)


def _kind(value: list[str]) -> CompiledCondition:
    wanted = _set_of(value)
    return CompiledCondition("kind", lambda f, s: f.appeal.kind in wanted, f"вид {_list(value)}", 0)


def _words(value: list[str]) -> CompiledCondition:
    words = WordSet.of(value)
    return CompiledCondition("words", lambda f, s: words.any_in(f), f"слова: {_list(value)}", 2)


def _all_words(value: list[str]) -> CompiledCondition:
    words = WordSet.of(value)
    return CompiledCondition(
        "all_words", lambda f, s: words.all_in(f), f"все слова: {_list(value)}", 2
    )


def _not_words(value: list[str]) -> CompiledCondition:
    words = WordSet.of(value)
    return CompiledCondition(
        "not_words", lambda f, s: not words.any_in(f), f"без слов: {_list(value)}", 2
    )


def _regex(value: list[str]) -> CompiledCondition:
    # Only «ё» is folded in a pattern: lowering it would turn \\D into \\d.
    patterns = [re.compile(p.replace("ё", "е").replace("Ё", "Е"), re.IGNORECASE) for p in value]
    return CompiledCondition(
        "regex",
        lambda f, s: any(p.search(f.folded) for p in patterns),
        f"шаблон {_list(value)}",
        3,
    )


def _hashtags(value: list[str]) -> CompiledCondition:
    wanted = frozenset(fold(h) for h in value)
    return CompiledCondition(
        "hashtags",
        lambda f, s: not wanted.isdisjoint(f.hashtags),
        "хештеги " + ", ".join(f"#{h}" for h in value),
        0,
    )


def _rating(value: tuple[int, int]) -> CompiledCondition:
    low, high = value

    def check(f: Facts, s: State) -> bool:
        rating = f.appeal.rating
        return rating is not None and low <= rating <= high

    return CompiledCondition("rating", check, f"оценка {low}–{high}", 0)


def _known(name: str, value: list[str], label: str) -> CompiledCondition:
    wanted = _set_of(value)

    def check(f: Facts, s: State) -> bool:
        return (getattr(s, name) or UNKNOWN) in wanted

    return CompiledCondition(name, check, f"{label} {_list(value)}", 0)


def _time(value: tuple[time, time]) -> CompiledCondition:
    start, end = value
    label = f"время {start:%H:%M}–{end:%H:%M} по поясу региона"
    return CompiledCondition(
        "time", lambda f, s: in_time_range(start, end, s.local_time().time()), label, 1
    )


def _weekdays(value: frozenset[int]) -> CompiledCondition:
    label = "дни " + ", ".join(DAY_LABELS[d] for d in sorted(value))
    return CompiledCondition("weekdays", lambda f, s: s.local_time().weekday() in value, label, 1)


def _author(value: dict[str, str | bool]) -> CompiledCondition:
    checks: list[tuple[str, bool | re.Pattern[str]]] = []
    for key, expected in value.items():
        checks.append((key, expected if isinstance(expected, bool) else re.compile(expected, re.I)))

    def check(f: Facts, s: State) -> bool:
        for key, expected in checks:
            raw = getattr(f.appeal.author, key, None) or ""
            if key == "phone" and f.phone is not None:
                raw = f.phone.e164
            if isinstance(expected, bool):
                if bool(str(raw).strip()) != expected:
                    return False
            elif not expected.search(str(raw)):
                return False
        return True

    return CompiledCondition("author", check, f"автор {_dict(value)}", 1)


def _fields(value: dict[str, list[str] | bool]) -> CompiledCondition:
    """Exact values (case and «ё» folded); a dialed line also matches in any phone spelling."""
    checks: list[tuple[str, bool | frozenset[str], frozenset[str]]] = []
    for key, expected in value.items():
        if isinstance(expected, bool):
            checks.append((key, expected, frozenset()))
            continue
        phones = frozenset(p.e164 for p in map(parse_phone, expected) if p is not None)
        checks.append((key, frozenset(fold(x).strip() for x in expected), phones))

    def check(f: Facts, s: State) -> bool:
        for key, expected, phones in checks:
            actual = f.fields.get(key, "")
            if isinstance(expected, bool):
                if bool(actual) != expected:
                    return False
            elif actual not in expected:
                phone = parse_phone(actual) if phones else None
                if phone is None or phone.e164 not in phones:
                    return False
        return True

    return CompiledCondition("fields", check, f"поля {_dict(value)}", 1)


def _list(values: list[str]) -> str:
    shown = ", ".join(values[:6])
    return shown + (f" и ещё {len(values) - 6}" if len(values) > 6 else "")


def _dict(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


_BUILDERS: dict[str, Callable[[Any], CompiledCondition]] = {
    "channel": _channel,
    "source": _source,
    "kind": _kind,
    "words": _words,
    "all_words": _all_words,
    "not_words": _not_words,
    "regex": _regex,
    "hashtags": _hashtags,
    "rating": _rating,
    "region": lambda v: _known("region", v, "регион"),
    "topic": lambda v: _known("topic", v, "тема"),
    "time": _time,
    "weekdays": _weekdays,
    "author": _author,
    "fields": _fields,
}
