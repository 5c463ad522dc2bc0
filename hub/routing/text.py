"""Russian text normalisation: tokens, lemma sets and phone numbers.

Words are compared as *sets of lemmas*: a token in an appeal may be read several ways
(«мыла» is soap or washed), so it carries every normal form pymorphy3 offers, while a
dictionary entry keeps only the readings in which it is already written in normal form.
An entry matches a token when the two sets meet. Both sides fold «ё» into «е» and case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import pymorphy3

_TOKEN_RE = re.compile(r"[0-9a-zа-яё]+(?:-[0-9a-zа-яё]+)*")
_HASHTAG_RE = re.compile(r"#([0-9a-zа-яё_]+)")
_DIGITS_RE = re.compile(r"\d")
# A run that may be a phone: starts with + or a digit, digits with spaces, dashes, brackets.
_PHONE_RUN_RE = re.compile(r"(?<![\d,.])\+?\d[\d \t\-()]{8,22}\d(?![\d,.]\d)")
MAX_SCAN = 4000

# Building the analyser loads ~15 MB of dictionaries: one instance for the process.
_morph: pymorphy3.MorphAnalyzer | None = None


def morph() -> pymorphy3.MorphAnalyzer:
    global _morph
    if _morph is None:
        _morph = pymorphy3.MorphAnalyzer()
    return _morph


def fold(text: str) -> str:
    """Lower case with «ё» as «е»: how every comparison in the engine sees text."""
    return text.lower().replace("ё", "е")


def tokens(text: str) -> list[str]:
    """Words and numbers of a folded text; hyphenated words («йошкар-ола») stay whole."""
    return _TOKEN_RE.findall(fold(text))


def hashtags(text: str) -> frozenset[str]:
    return frozenset(_HASHTAG_RE.findall(fold(text)))


@lru_cache(maxsize=200_000)
def lemmas(token: str) -> frozenset[str]:
    """Every normal form a folded token may have; numbers and latin words stand for themselves."""
    if not token or not ("а" <= token[0] <= "я" or token[0] == "ё"):
        return frozenset((token,))
    found = {fold(p.normal_form) for p in morph().parse(token)}
    found.add(token)
    return frozenset(found)


@lru_cache(maxsize=20_000)
def entry_lemmas(word: str) -> frozenset[str]:
    """Lemmas of a dictionary entry: only the readings in which it is written in normal form.

    «мыло» keeps the noun and drops the verb «мыть», so the entry does not fire on «мыть».
    """
    token = fold(word.strip())
    if not token or not ("а" <= token[0] <= "я"):
        return frozenset((token,))
    parses = morph().parse(token)
    own = {fold(p.normal_form) for p in parses if fold(p.normal_form) == token}
    return frozenset(own or {fold(p.normal_form) for p in parses})


@lru_cache(maxsize=20_000)
def place_lemmas(word: str) -> frozenset[str]:
    """Lemmas of a place-name word: geographic readings first («иваново», not «иванов»)."""
    token = fold(word.strip())
    if not token or not ("а" <= token[0] <= "я"):
        return frozenset((token,))
    parses = morph().parse(token)
    geo = {fold(p.normal_form) for p in parses if "Geox" in p.tag}
    return frozenset(geo) if geo else entry_lemmas(word)


def phrase(words: str, *, place: bool = False) -> tuple[frozenset[str], ...]:
    """A dictionary phrase as a sequence of lemma sets, matched on consecutive tokens."""
    pick = place_lemmas if place else entry_lemmas
    return tuple(pick(t) for t in tokens(words))


def is_known_word(word: str) -> bool:
    """False when pymorphy3 only guesses the word (a typo in a dictionary, usually)."""
    token = fold(word)
    return not token.isalpha() or morph().word_is_known(token)


@dataclass(frozen=True)
class Phone:
    e164: str  # +74951234567
    national: str  # 4951234567
    mobile: bool  # 9xx: not tied to a region
    toll_free: bool  # 8-800


@lru_cache(maxsize=50_000)
def parse_phone(raw: str | None) -> Phone | None:
    """A Russian phone number in any customary spelling, or None when it is not one.

    «+7 (843) 123-45-67», «8 843 123 45 67», «88431234567», «8431234567» all read the same.
    """
    if not raw or len(_DIGITS_RE.findall(raw)) < 10:
        return None
    try:
        number = phonenumbers.parse(raw[:64], "RU")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 7 or not phonenumbers.is_possible_number(number):
        return None
    national = str(number.national_number)
    if len(national) != 10:
        return None
    return Phone(
        e164=f"+7{national}",
        national=national,
        mobile=national.startswith("9"),
        toll_free=national.startswith("80"),
    )


def phones_in_text(text: str, *, limit: int = 3) -> list[Phone]:
    """Phone numbers a customer wrote into the text («перезвоните 8 (4852) 12-34-56»).

    A regex picks runs of 10–11 digits with the usual separators and ``parse_phone``
    judges each: several times cheaper than phonenumbers' own matcher, which matters
    because this runs for every appeal whose author gave no landline.
    """
    found: list[Phone] = []
    if len(_DIGITS_RE.findall(text)) < 10:
        return found
    for match in _PHONE_RUN_RE.finditer(text[:MAX_SCAN]):
        run = match.group(0)
        digits = sum(c.isdigit() for c in run)
        if digits not in (10, 11):
            continue
        phone = parse_phone(run)
        if phone is not None and phone not in found:
            found.append(phone)
            if len(found) >= limit:
                break
    return found
