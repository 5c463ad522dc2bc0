"""Where an appeal comes from, found in a fixed order: source store, explicit field (a chosen
store, then a named city or region), phone, text.

Each step that fails leaves a note, so the trace tells why the region is unknown as well as
how it was found. Nothing is guessed: two regions named in one text are ambiguous, not a tie.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hub.routing.facts import Facts, phrase_at
from hub.routing.model import Region, RuleSetModel, Store
from hub.routing.text import Phone, fold, lemmas, parse_phone, phones_in_text, phrase, tokens

# Words after which an ambiguous city name («Владимир», «Орёл») is read as a place.
CONTEXT_WORDS = frozenset(
    ("в", "во", "из", "изо", "по", "с", "со", "до", "под", "около", "возле", "у", "г", "гор")
    + ("город", "городе", "города", "городу", "пос", "поселок")
)
STREET_WORDS = frozenset(
    ("ул", "улица", "пр", "пр-т", "пр-кт", "просп", "проспект", "пер", "переулок", "ш", "шоссе")
    + ("б-р", "бул", "бульвар", "пл", "площадь", "наб", "набережная", "мкр", "микрорайон")
    + ("проезд", "тракт")
)
HOUSE_WORDS = frozenset(("д", "дом"))
_STORE_NO_RE = re.compile(r"(?:магазин\w*\s*№?|№)\s*(\d{3,6})")
# A store field's value: «1012», «№ 1012», «магазин 1012» (folded).
_STORE_FIELD_RE = re.compile(r"(?:магазин\w*)?\s*№?\s*(\S+)")


@dataclass(frozen=True)
class Place:
    region: str
    name: str
    needs_context: bool
    kind: str  # "город", "регион"


@dataclass
class RegionFinding:
    region: str | None
    method: str  # "source", "field", "phone", "text", "" when not found
    message: str
    store: Store | None = None
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


class Gazetteer:
    def __init__(self, model: RuleSetModel) -> None:
        self.regions: dict[str, Region] = {r.code: r for r in model.regions}
        self.stores: dict[str, Store] = {s.id: s for s in model.stores}
        self.by_source: dict[tuple[str, str], Store] = {}
        self.by_line: dict[str, Store] = {}
        self.region_sources: dict[tuple[str, str], str] = {}
        self.area_codes: dict[str, str] = {}
        self.places: dict[str, list[tuple[tuple[frozenset[str], ...], Place]]] = defaultdict(list)
        self.houses: dict[str, list[tuple[tuple[frozenset[str], ...], Store]]] = defaultdict(list)
        self.line_fields = model.settings.line_fields
        self.store_fields = [fold(n) for n in model.settings.store_fields]
        self.stores_folded: dict[str, Store] = {fold(s.id): s for s in model.stores}
        self.region_fields = {
            name: {fold(k): v for k, v in values.items()}
            for name, values in model.settings.region_fields.items()
        }
        for region in model.regions:
            for code in region.area_codes:
                self.area_codes[code] = region.code
            for source in region.sources:
                channel, _, ident = source.partition(":")
                self.region_sources[(channel, ident)] = region.code
            for city in region.cities:
                self._add_place(
                    city.name, Place(region.code, city.name, city.needs_context, "город")
                )
            for name in [region.name, *region.aliases]:
                self._add_place(name, Place(region.code, name, False, "регион"))
        for store in model.stores:
            for channel, ident in store.sources.items():
                self.by_source[(channel, ident)] = store
            if store.phone_line:
                phone = parse_phone(store.phone_line)
                if phone:
                    self.by_line[phone.e164] = store
            street, house = split_address(store.address)
            if street and house:
                self.houses[house].append((street, store))

    def _add_place(self, name: str, place: Place) -> None:
        seq = phrase(name, place=True)
        if seq:
            for lemma in seq[0]:
                self.places[lemma].append((seq[1:], place))

    def region_name(self, code: str | None) -> str:
        return self.regions[code].name if code in self.regions else "не определён"

    # --- the four steps -------------------------------------------------------------------
    def find(self, facts: Facts) -> RegionFinding:
        notes: list[str] = []
        for step in (self._by_source, self._by_field, self._by_phone, self._by_text):
            found = step(facts, notes)
            if found is not None:
                found.notes = notes
                return found
        message = (
            "Регион не определён: " + "; ".join(notes) + ". Обращение уйдёт в резервную очередь."
        )
        return RegionFinding(None, "", message, notes=notes)

    def _by_source(self, facts: Facts, notes: list[str]) -> RegionFinding | None:
        a = facts.appeal
        store = self.by_source.get((a.channel, a.source))
        if store is not None:
            return self._store_finding(
                store, "source", f"источник {a.channel} «{a.source}» принадлежит магазину"
            )
        code = self.region_sources.get((a.channel, a.source))
        if code is not None:
            msg = (
                f"Регион «{self.region_name(code)}» — по источнику: "
                f"{a.channel} «{a.source}» закреплён за регионом."
            )
            return RegionFinding(code, "source", msg)
        for name in self.line_fields:
            phone = parse_phone(facts.fields.get(name))
            if phone and phone.e164 in self.by_line:
                store = self.by_line[phone.e164]
                return self._store_finding(
                    store, "source", f"набранная линия {phone.e164} — магазина"
                )
        notes.append(f"источник {a.channel} «{a.source}» не привязан к магазину")
        return None

    def _store_finding(self, store: Store, method: str, why: str) -> RegionFinding:
        msg = (
            f"Регион «{self.region_name(store.region)}» — {_METHOD[method]}: {why} {store.id} "
            f"({store.city}, {store.address})."
        )
        return RegionFinding(store.region, method, msg, store=store, data={"store": store.id})

    def _by_field(self, facts: Facts, notes: list[str]) -> RegionFinding | None:
        found = self._by_store_field(facts, notes)
        if found is not None:
            return found
        for name, values in self.region_fields.items():
            value = facts.fields.get(name)
            if not value:
                continue
            code = values.get(value) if values else self.resolve_name(value)
            if code is not None:
                msg = f"Регион «{self.region_name(code)}» — по полю «{name}» = «{value}»."
                return RegionFinding(code, "field", msg, data={"field": name, "value": value})
            notes.append(f"значение поля «{name}» = «{value}» не узнано")
        return None

    def _by_store_field(self, facts: Facts, notes: list[str]) -> RegionFinding | None:
        """A store the customer chose by its id (``store_fields``): the store and its region."""
        if not self.store_fields:
            return None
        by_name = {fold(k): (k, v) for k, v in facts.fields.items()}
        for wanted in self.store_fields:
            name, value = by_name.get(wanted, (wanted, ""))
            value = value.strip()
            if not value:
                continue
            m = _STORE_FIELD_RE.fullmatch(value)
            store = self.stores_folded.get(value) or (
                self.stores_folded.get(m.group(1)) if m else None
            )
            if store is not None:
                found = self._store_finding(store, "field", f"в поле «{name}» выбран магазин")
                found.data["field"] = name
                return found
            notes.append(f"в поле «{name}» = «{value}» нет магазина из справочника")
        return None

    def resolve_name(self, value: str) -> str | None:
        """A region code, a region's name or alias, or a city, as typed in a form field."""
        if value in self.regions:
            return value
        hits = {p.region for p, _ in self._places_in(tokens(value), need_context=False)}
        return hits.pop() if len(hits) == 1 else None

    def _by_phone(self, facts: Facts, notes: list[str]) -> RegionFinding | None:
        candidates: list[tuple[str, Phone]] = []
        if facts.phone is not None:
            candidates.append(("телефону автора", facts.phone))
        elif facts.appeal.author and facts.appeal.author.phone:
            notes.append(f"«{facts.appeal.author.phone}» не читается как российский номер")
        candidates += [("номеру в тексте", p) for p in phones_in_text(facts.appeal.text or "")]
        for label, phone in candidates:
            code = self.area_code_region(phone)
            if code is not None:
                area = next(
                    c
                    for c in (phone.national[:5], phone.national[:4], phone.national[:3])
                    if c in self.area_codes
                )
                msg = f"Регион «{self.region_name(code)}» — по {label} {phone.e164}: код {area}."
                return RegionFinding(
                    code, "phone", msg, data={"phone": phone.e164, "area_code": area}
                )
            if phone.mobile:
                notes.append(f"номер {phone.e164} мобильный — по нему регион не определить")
            elif phone.toll_free:
                notes.append(f"номер {phone.e164} бесплатный (8-800)")
            else:
                notes.append(f"код номера {phone.e164} не из нашего справочника")
        if not candidates:
            notes.append("телефона нет")
        return None

    def area_code_region(self, phone: Phone) -> str | None:
        for size in (5, 4, 3):
            code = self.area_codes.get(phone.national[:size])
            if code is not None:
                return code
        return None

    def _by_text(self, facts: Facts, notes: list[str]) -> RegionFinding | None:
        places = self._places_in(facts.tokens, sets=facts.lemma_sets)
        stores = self._stores_in(facts)
        cities = {p.name for p, _ in places if p.kind == "город"}
        if stores and cities:
            narrowed = [s for s in stores if fold(s.city) in {fold(c) for c in cities}]
            stores = narrowed or stores
        store_regions = {s.region for s in stores}
        if len(store_regions) == 1:
            store = stores[0]
            shown = store if len(stores) == 1 else None
            why = (
                f"в тексте назван магазин {store.id} ({store.city}, {store.address})"
                if shown
                else (
                    "адрес в тексте совпал с магазинами "
                    f"{', '.join(s.id for s in stores)} одного региона"
                )
            )
            msg = f"Регион «{self.region_name(store.region)}» — по тексту: {why}."
            return RegionFinding(
                store.region, "text", msg, store=shown, data={"stores": [s.id for s in stores]}
            )
        place_regions = {p.region for p, _ in places}
        if len(place_regions) == 1:
            place, at = places[0]
            word = " ".join(facts.tokens[at : at + len(tokens(place.name))])
            msg = (
                f"Регион «{self.region_name(place.region)}» — по тексту: "
                f"«{word}» — {place.kind} {place.name}."
            )
            return RegionFinding(
                place.region, "text", msg, data={"place": place.name, "word": word}
            )
        if len(place_regions) > 1 or len(store_regions) > 1:
            named = sorted({p.name for p, _ in places} | {s.id for s in stores})
            notes.append("в тексте названы места из разных регионов: " + ", ".join(named))
        else:
            notes.append("город или адрес магазина в тексте не найден")
        return None

    def _places_in(
        self,
        toks: list[str],
        *,
        sets: list[frozenset[str]] | None = None,
        need_context: bool = True,
    ) -> list[tuple[Place, int]]:
        sets = sets if sets is not None else [lemmas(t) for t in toks]
        found: list[tuple[Place, int]] = []
        for i, lemma_set in enumerate(sets):
            for lemma in lemma_set:
                for rest, place in self.places.get(lemma, ()):
                    if rest and not phrase_at(sets, i + 1, rest):
                        continue
                    if (
                        need_context
                        and place.needs_context
                        and (i == 0 or toks[i - 1] not in CONTEXT_WORDS)
                    ):
                        continue
                    if (place, i) not in found:
                        found.append((place, i))
        return found

    def _stores_in(self, facts: Facts) -> list[Store]:
        found: list[Store] = []
        for match in _STORE_NO_RE.finditer(facts.folded):
            store = self.stores.get(match.group(1))
            if store is not None and store not in found:
                found.append(store)
        toks, sets = facts.tokens, facts.lemma_sets
        for j, tok in enumerate(toks):
            if not tok[0].isdigit() or tok not in self.houses:
                continue
            k = j - 1
            while k >= 0 and toks[k] in HOUSE_WORDS:
                k -= 1
            for street, store in self.houses[tok]:
                start = k - len(street) + 1
                if start >= 0 and phrase_at(sets, start, street) and store not in found:
                    found.append(store)
        return found


_METHOD = {"source": "по источнику", "field": "по полю", "text": "по тексту"}


def split_address(address: str) -> tuple[tuple[frozenset[str], ...], str]:
    """«ул. Ленина, 15к2» -> (lemma sets of «Ленина», "15к2"); no house, no entry."""
    toks = tokens(address)
    house_at = next((i for i in range(len(toks) - 1, -1, -1) if toks[i][0].isdigit()), None)
    if house_at is None:
        return (), ""
    words = [t for t in toks[:house_at] if t not in STREET_WORDS and t not in HOUSE_WORDS]
    return phrase(" ".join(words), place=True), toks[house_at]
