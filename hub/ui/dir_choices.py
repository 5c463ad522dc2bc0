"""What the editor's selects offer: the channels, regions, topics, departments, employees,
pools and Bitrix24 stages of the version being edited (not of the one in force), so a region
added a minute ago can be picked in a rule at once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from connectors import CONNECTORS
from hub.routing.compile import checksum
from hub.routing.model import KINDS, UNKNOWN
from hub.routing.parse import parse_files


def N_(message: str) -> str:
    return message


KIND_LABELS = {
    "message": N_("сообщение"), "comment": N_("комментарий"), "review": N_("отзыв"),
    "call": N_("звонок"), "form": N_("форма"), "email": N_("письмо"),
}  # fmt: skip
ENTITY_LABELS = {"": N_("сделка (по умолчанию)"), "deal": N_("сделка"), "lead": N_("лид")}
NOT_FOUND = N_("не определён")

Option = tuple[str, str]  # (value, label)


@dataclass(frozen=True)
class Choices:
    channels: list[Option] = field(default_factory=list)
    kinds: list[Option] = field(default_factory=list)
    regions: list[Option] = field(default_factory=list)
    topics: list[Option] = field(default_factory=list)
    departments: list[Option] = field(default_factory=list)
    employees: list[Option] = field(default_factory=list)
    pools: list[Option] = field(default_factory=list)
    stages: list[Option] = field(default_factory=list)  # deal stages and lead statuses

    @property
    def regions_any(self) -> list[Option]:
        return [(UNKNOWN, NOT_FOUND), *self.regions]

    @property
    def topics_any(self) -> list[Option]:
        return [(UNKNOWN, NOT_FOUND), *self.topics]

    def options(self, source: str, picked: list[str], first: bool = True) -> list[Option]:
        """The list named ``source``, with the picked values first when ``first`` (a list box
        shows its top, and the admin must see what is chosen). A picked code no longer in the
        directory stays visible, and the checker says so."""
        base: list[Option] = list(getattr(self, source, []))
        labels = dict(base)
        missing = [(v, v) for v in dict.fromkeys(picked) if v not in labels]
        if not first:
            return base + missing
        chosen = [(v, labels.get(v, v)) for v in dict.fromkeys(picked)]
        return chosen + [(v, label) for v, label in base if v not in picked]


_lock = threading.Lock()
_cache: OrderedDict[str, Choices] = OrderedDict()


def choices_of(files: dict[str, str]) -> Choices:
    """Built from the parsed directory, remembered by checksum (the editor asks at every row)."""
    key = checksum(files)
    with _lock:
        if key in _cache:
            return _cache[key]
    model, _problems = parse_files(files)
    stages = sorted(
        {s for stages in model.bitrix24.stages.values() for s in stages}
        | model.bitrix24.lead_statuses
    )
    built = Choices(
        channels=[(c, c) for c in (model.settings.channels or sorted(CONNECTORS))],
        kinds=[(k, KIND_LABELS[k]) for k in KINDS],
        regions=[(r.code, f"{r.name} ({r.code})") for r in model.regions],
        topics=[(t.code, f"{t.title} ({t.code})") for t in model.topics],
        departments=[(d.code, f"{d.name} ({d.code})") for d in model.departments],
        employees=[(e.id, f"{e.name} ({e.id})") for e in model.employees],
        pools=[(p.code, f"{p.title} ({p.code}, {p.strategy})") for p in model.pools],
        stages=[(s, s) for s in stages],
    )
    with _lock:
        _cache[key] = built
        while len(_cache) > 4:
            _cache.popitem(last=False)
    return built
