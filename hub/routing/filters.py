"""Noise filters applied before routing: contest entries, spam, blacklisted senders.

A filtered appeal is kept with the filter's reason and never delivered (invariant 3); the
trace names the filter and what it matched.
"""

from __future__ import annotations

import re

from hub.routing.conditions import WordSet
from hub.routing.facts import Facts
from hub.routing.model import FilterDef
from hub.routing.text import fold, parse_phone


class CompiledFilter:
    def __init__(self, spec: FilterDef) -> None:
        self.id = spec.id
        self.reason = spec.reason
        self.channels = frozenset(spec.channels)
        self.kinds = frozenset(spec.kinds)
        self.hashtags = frozenset(fold(h) for h in spec.hashtags)
        self.words = WordSet.of(spec.words)
        self.word_list = spec.words
        self.patterns = [re.compile(p.replace("ё", "е"), re.IGNORECASE) for p in spec.patterns]
        self.phones = frozenset(p.e164 for p in map(parse_phone, spec.phones) if p is not None)
        self.platform_ids = frozenset(spec.platform_ids)
        self.emails = frozenset(e.strip().lower() for e in spec.emails)

    def match(self, facts: Facts) -> str | None:
        """A Russian sentence saying what matched, or None."""
        a = facts.appeal
        if self.channels and a.channel not in self.channels:
            return None
        if self.kinds and a.kind not in self.kinds:
            return None
        head = f"Отфильтровано фильтром «{self.id}» ({self.reason})"
        tail = "Обращение сохранено, в Битрикс24 не передаётся."
        tags = self.hashtags & facts.hashtags
        if tags:
            return f"{head}: хештег {', '.join('#' + t for t in sorted(tags))}. {tail}"
        if self.word_list and self.words.any_in(facts):
            return f"{head}: фраза из списка ({', '.join(self.word_list[:5])}). {tail}"
        for pattern in self.patterns:
            found = pattern.search(facts.folded)
            if found:
                return f"{head}: шаблон «{pattern.pattern}» нашёл «{found.group(0)[:60]}». {tail}"
        if facts.phone is not None and facts.phone.e164 in self.phones:
            return f"{head}: номер {facts.phone.e164} в чёрном списке. {tail}"
        author = a.author
        pid = author.platform_id if author else None
        if pid and (pid in self.platform_ids or f"{a.channel}:{pid}" in self.platform_ids):
            return f"{head}: аккаунт {a.channel}:{pid} в чёрном списке. {tail}"
        email = (author.email or "").strip().lower() if author else ""
        if email and (email in self.emails or "@" + email.partition("@")[2] in self.emails):
            return f"{head}: адрес {email} в чёрном списке. {tail}"
        return None
