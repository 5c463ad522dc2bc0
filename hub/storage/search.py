"""Full-text search of appeals: what a typed needle means, and the indexed condition for it.

The index (migration 0004) holds each appeal's text, author's name, e-mail and phone: an FTS5
table on SQLite, a GIN index over ``clienthub_search_document(…)`` on PostgreSQL. Both store
words as written (lower case, «ё» as «е»); Russian word forms are matched on the query side:
each typed word becomes the set of its forms from pymorphy3 («плесенью» finds «плесень»,
«плесени»), so the two databases answer the same. A phone in any spelling («8 903 123-45-67»,
«+7 (903) 1234567») is one token, 7XXXXXXXXXX; fewer digits search as a prefix of the number.
A word typed with a trailing ``*`` is a prefix.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, column, false, literal_column, or_, table, text
from sqlalchemy.sql import Select

from hub.models import Appeal
from hub.routing.text import fold, morph, parse_phone

MAX_WORDS = 8  # a longer needle is cut: each word costs a set of index lookups
MAX_FORMS = 300
_WORD_RE = re.compile(r"[^\W_]+\*?")
FTS = table("appeals_fts", column("rowid"))
PG_DOCUMENT = "clienthub_search_document(appeals.text, appeals.author_name, appeals.author_email, appeals.author_phone)"  # noqa: E501


@dataclass(frozen=True)
class Term:
    """One word of the needle: any of ``forms`` matches; ``prefix`` matches words so begun."""

    forms: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Needle:
    terms: tuple[Term, ...]
    email: str | None = None  # an exact address narrows the words it was split into


@lru_cache(maxsize=4096)
def word_forms(word: str) -> tuple[str, ...]:
    """Every form of a Russian word in its dictionary readings (all guessed ones when unknown);
    other words stand for themselves."""
    if not re.search("[а-я]", word):
        return (word,)
    parses = morph().parse(word)
    known = [p for p in parses if p.is_known] or parses[:1]
    forms = {word}
    for parse in known:
        forms.update(fold(f.word) for f in parse.lexeme)
    return tuple(sorted(forms)[:MAX_FORMS])


def _phone_term(needle: str, digits: str) -> Term | None:
    """A needle made mostly of digits is a phone number, whole or its beginning."""
    if len(digits) < 5 or len(digits) < len(re.sub(r"\s", "", needle)) - 4:
        return None
    phone = parse_phone(needle)
    if phone is not None:
        national = phone.national
        return Term((f"7{national}", f"8{national}", national))
    if len(digits) >= 10:
        return Term((digits,))
    if digits[0] == "8":  # the trunk prefix: «8 903 12» is the national number 90312…
        return Term((digits[1:],), prefix=True)
    return Term((digits,), prefix=True)


def parse_needle(needle: str) -> Needle:
    needle = unicodedata.normalize("NFC", needle.strip())
    digits = re.sub(r"\D", "", needle)
    if "@" not in needle:
        phone = _phone_term(needle, digits)
        if phone is not None:
            return Needle((phone,))
    terms: list[Term] = []
    for match in _WORD_RE.findall(fold(needle))[:MAX_WORDS]:
        word = match.rstrip("*")
        if match.endswith("*"):
            terms.append(Term((word,), prefix=True))
        elif "@" in needle:
            terms.append(Term((word,)))
        else:
            terms.append(Term(word_forms(word)))
    email = needle.lower() if "@" in needle else None
    return Needle(tuple(terms), email)


def fts5_query(needle: Needle) -> str:
    """FTS5 syntax: each form quoted (a token of letters or digits only), ORed, terms ANDed."""

    def one(term: Term) -> str:
        if term.prefix:
            return f'"{term.forms[0]}"*'
        return "(" + " OR ".join(f'"{f}"' for f in term.forms) + ")"

    return " AND ".join(one(t) for t in needle.terms)


def tsquery(needle: Needle) -> str:
    """``to_tsquery('simple', …)`` syntax with the same meaning as :func:`fts5_query`."""

    def one(term: Term) -> str:
        if term.prefix:
            return f"{term.forms[0]}:*"
        return "(" + " | ".join(term.forms) + ")"

    return " & ".join(one(t) for t in needle.terms)


def restrict(query: Select[Any], dialect: str, raw: str) -> tuple[Select[Any], Any]:
    """``query`` limited to appeals matching ``raw``, and the column that orders them newest
    first the way the index reads them (on SQLite, the FTS rowid: read backwards, no sort)."""
    needle = parse_needle(raw)
    if not needle.terms:
        return query.where(false()), Appeal.id
    extra = []
    if needle.email:
        pattern = f"%{needle.email}%"
        extra.append(or_(Appeal.author_email.ilike(pattern), Appeal.text.ilike(pattern)))
    if dialect == "postgresql":
        match = text(f"{PG_DOCUMENT} @@ to_tsquery('simple', :search_query)").bindparams(
            search_query=tsquery(needle)
        )
        return query.where(match, *extra), Appeal.id
    match = literal_column("appeals_fts").op("MATCH")(fts5_query(needle))
    joined = query.join(FTS, FTS.c.rowid == Appeal.id).where(and_(match, *extra))
    return joined, FTS.c.rowid
