"""Which rules can possibly match an appeal, found by lookups instead of trying all 1,000.

Each rule is filed under one *anchor*: its most selective condition that can be looked up
(its source, a form field's value, a hashtag, a word's lemma, the region, the topic, the
kind, the channel). A rule without such a condition is tried for every appeal. The anchor
only preselects: the rule's own conditions are still checked in full, in rule order.

Region and topic change when a rule sets them, so their part of the candidates is rebuilt
from that rule on; everything else is fixed by the appeal.
"""

from __future__ import annotations

from collections import defaultdict

from hub.routing.conditions import WordSet
from hub.routing.facts import Facts
from hub.routing.model import UNKNOWN, Condition, Rule
from hub.routing.text import fold, parse_phone

# Most selective first.
_ANCHORS = ("source", "fields", "hashtags", "words", "region", "topic", "kind", "channel")


class RuleIndex:
    def __init__(self, rules: list[Rule]) -> None:
        self.always: list[int] = []
        self.tables: dict[str, dict[object, list[int]]] = {a: defaultdict(list) for a in _ANCHORS}
        self.anchors: list[str] = []
        for position, rule in enumerate(rules):
            anchor, keys = _anchor(rule.conditions)
            self.anchors.append(anchor)
            if not keys:
                self.always.append(position)
                continue
            for key in keys:
                self.tables[anchor][key].append(position)
        self.tables = {a: dict(t) for a, t in self.tables.items()}

    def static(self, facts: Facts) -> set[int]:
        """Candidates fixed by the appeal itself."""
        a = facts.appeal
        found: set[int] = set(self.always)
        t = self.tables
        for key in (a.source, f"{a.channel}:{a.source}"):
            found.update(t["source"].get(key, ()))
        for item in facts.fields.items():
            found.update(t["fields"].get(item, ()))
        for tag in facts.hashtags:
            found.update(t["hashtags"].get(tag, ()))
        words = t["words"]
        if words:
            for lemma in facts.lemmas:
                hits = words.get(lemma)
                if hits:
                    found.update(hits)
        found.update(t["kind"].get(a.kind, ()))
        found.update(t["channel"].get(a.channel, ()))
        return found

    def dynamic(self, region: str | None, topic: str | None) -> set[int]:
        """Candidates filed under the region and topic the decision has now."""
        found = set(self.tables["region"].get(region or UNKNOWN, ()))
        found.update(self.tables["topic"].get(topic or UNKNOWN, ()))
        return found


def _anchor(conditions: list[Condition]) -> tuple[str, list[object]]:
    by_name = {c.name: c.value for c in conditions}
    for name in _ANCHORS:
        if name not in by_name:
            continue
        keys = _keys(name, by_name[name])
        if keys is not None:
            return name, keys
    return "", []


def _keys(name: str, value: object) -> list[object] | None:
    """Lookup keys for a condition, or None when it cannot serve as an anchor."""
    if name in ("source", "region", "topic", "kind", "channel"):
        assert isinstance(value, list)
        return list(value)
    if name == "hashtags":
        assert isinstance(value, list)
        return [fold(h) for h in value]
    if name == "words":
        assert isinstance(value, list)
        words = WordSet.of(value)
        keys: set[str] = set(words.singles)
        for seq in words.phrases:
            keys |= seq[0]
        return sorted(keys) if keys else None
    if name == "fields":
        assert isinstance(value, dict)
        for field, expected in value.items():
            # Presence tests and phone numbers (any spelling matches) cannot be looked up.
            if isinstance(expected, bool) or any(parse_phone(v) for v in expected):
                continue
            return [(field, fold(v).strip()) for v in expected]
        return None
    return None
