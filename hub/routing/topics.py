"""Topic from the dictionaries: each matched entry adds its weight once; the best score wins.

A topic below its minimum score is not chosen, and a negative word removes its topic. Equal
best scores are settled by the order of topics.yaml, and the trace says so.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from hub.routing.facts import Facts, phrase_at
from hub.routing.model import RuleSetModel
from hub.routing.text import phrase


@dataclass
class TopicFinding:
    topic: str | None
    message: str
    scores: dict[str, int] = field(default_factory=dict)
    words: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    topic: int
    text: str
    weight: int
    rest: tuple[frozenset[str], ...]  # the phrase after its first word


class TopicScorer:
    def __init__(self, model: RuleSetModel) -> None:
        self.codes = [t.code for t in model.topics]
        self.titles = {t.code: t.title for t in model.topics}
        default = model.settings.topic_min_score
        self.min_scores = [t.min_score or default for t in model.topics]
        self.entries: dict[str, list[_Entry]] = defaultdict(list)
        self.negative: dict[str, list[_Entry]] = defaultdict(list)
        for index, topic in enumerate(model.topics):
            for text, weight in topic.words.items():
                self._add(self.entries, index, text, weight)
            for text in topic.negative:
                self._add(self.negative, index, text, 0)

    @staticmethod
    def _add(table: dict[str, list[_Entry]], topic: int, text: str, weight: int) -> None:
        seq = phrase(text)
        if not seq:
            return
        entry = _Entry(topic, text, weight, seq[1:])
        for lemma in seq[0]:
            table[lemma].append(entry)

    def _hits(self, facts: Facts, table: dict[str, list[_Entry]]) -> set[_Entry]:
        hits: set[_Entry] = set()
        sets = facts.lemma_sets
        for i, lemma_set in enumerate(sets):
            for lemma in lemma_set:
                for entry in table.get(lemma, ()):
                    if not entry.rest or phrase_at(sets, i + 1, entry.rest):
                        hits.add(entry)
        return hits

    def find(self, facts: Facts) -> TopicFinding:
        hits = self._hits(facts, self.entries)
        if not hits:
            return TopicFinding(
                None, "Тема не определена: ни одно слово словарей тем не найдено в тексте."
            )
        vetoed = {e.topic: e.text for e in self._hits(facts, self.negative)}
        scores: dict[int, int] = defaultdict(int)
        words: dict[int, list[str]] = defaultdict(list)
        for entry in sorted(hits, key=lambda e: (e.topic, e.text)):
            scores[entry.topic] += entry.weight
            words[entry.topic].append(entry.text)
        named = {self.codes[i]: s for i, s in scores.items()}
        named_words = {self.codes[i]: w for i, w in words.items()}
        eligible = [i for i in scores if i not in vetoed and scores[i] >= self.min_scores[i]]
        notes = [
            f"«{self.codes[i]}» исключена словом «{vetoed[i]}»"
            for i in sorted(vetoed)
            if i in scores
        ]
        if not eligible:
            open_topics = [i for i in scores if i not in vetoed]
            reasons = list(notes)
            if open_topics:
                best = max(open_topics, key=lambda i: (scores[i], -i))
                reasons.insert(
                    0,
                    f"лучший счёт {scores[best]} у «{self.codes[best]}» "
                    f"({', '.join(words[best])}) ниже порога {self.min_scores[best]}",
                )
            reason = "; ".join(reasons)
            return TopicFinding(None, f"Тема не определена: {reason}.", named, named_words)
        top = max(scores[i] for i in eligible)
        leaders = sorted(i for i in eligible if scores[i] == top)
        winner = leaders[0]
        code = self.codes[winner]
        message = (
            f"Тема «{self.titles[code]}» ({code}) — по словарю: {', '.join(words[winner])} "
            f"(счёт {top})."
        )
        others = sorted((i for i in eligible if i != winner), key=lambda i: -scores[i])
        if len(leaders) > 1:
            rivals = ", ".join(self.codes[i] for i in leaders[1:])
            message += f" Равный счёт с {rivals}: выбрана тема, что выше в topics.yaml."
        elif others:
            message += f" Следующая: {self.codes[others[0]]} ({scores[others[0]]})."
        if notes:
            message += " " + "; ".join(notes).capitalize() + "."
        return TopicFinding(code, message, named, named_words)
