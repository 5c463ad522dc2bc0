"""What the engine reads off one appeal, computed once before any rule runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.routing.text import Phone, fold, hashtags, lemmas, parse_phone, tokens
from hub.routing.types import AppealInput

# Longer texts are cut: a 50 KB e-mail thread must not cost more than its first pages.
MAX_TEXT = 5000


@dataclass
class Facts:
    appeal: AppealInput
    folded: str
    tokens: list[str]
    lemma_sets: list[frozenset[str]]
    lemmas: frozenset[str]
    hashtags: frozenset[str]
    fields: dict[str, str]  # folded text of every scalar custom field
    phone: Phone | None  # the author's phone

    @classmethod
    def of(cls, appeal: AppealInput) -> Facts:
        text = (appeal.text or "")[:MAX_TEXT]
        toks = tokens(text)
        sets = [lemmas(t) for t in toks]
        union: set[str] = set()
        for s in sets:
            union |= s
        return cls(
            appeal=appeal,
            folded=fold(text),
            tokens=toks,
            lemma_sets=sets,
            lemmas=frozenset(union),
            hashtags=hashtags(text),
            fields={str(k): _scalar(v) for k, v in (appeal.fields or {}).items()},
            phone=parse_phone(appeal.author.phone if appeal.author else None),
        )


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_scalar(v) for v in value)
    return fold(str(value)).strip() if value is not None else ""


def phrase_at(sets: list[frozenset[str]], start: int, phrase: tuple[frozenset[str], ...]) -> bool:
    """Whether the consecutive tokens from ``start`` read as ``phrase``."""
    if start + len(phrase) > len(sets):
        return False
    return all(not sets[start + i].isdisjoint(p) for i, p in enumerate(phrase))
