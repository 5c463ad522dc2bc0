"""Whatever arrives, the engine decides without crashing and explains itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.text import parse_phone, phones_in_text
from hub.routing.types import AppealInput, AuthorInput
from hub.rules_io import read_dir

SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def sample() -> CompiledRuleSet:
    return compile_files(read_dir(SAMPLE))


letters = st.text(
    alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ0123456789"
    " ,.!?-#№()+:;\n\t😡🙏👍",
    max_size=40,
)
pieces = st.sampled_from(
    ["вакансия", "в Казани", "просрочка", "8 (843) 222-33-44", "#конкурс", "ул. Ленина, 15"]
)
russian = st.lists(st.one_of(letters, pieces), max_size=12).map(" ".join)
any_text = st.one_of(st.text(max_size=300), russian)
phones = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.from_regex(r"(\+7|8|7)?[ -]?\(?\d{3,5}\)?[ -]?\d{1,3}[ -]?\d{2}[ -]?\d{2}", fullmatch=True),
)
times = st.datetimes(
    min_value=datetime(1971, 1, 2),
    max_value=datetime(2099, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-8))]),
)
appeals = st.builds(
    AppealInput,
    channel=st.sampled_from(["vk", "telegram", "ok", "twogis", "yandex", "tilda", "mango", "x"]),
    source=st.one_of(st.text(max_size=20), st.sampled_from(["club210000126", "@market_spb"])),
    kind=st.sampled_from(["message", "comment", "review", "call", "form", "email", "???"]),
    text=any_text,
    author=st.builds(
        AuthorInput,
        name=st.one_of(st.none(), st.text(max_size=30)),
        phone=phones,
        email=st.one_of(st.none(), st.emails(), st.text(max_size=20)),
        platform_id=st.one_of(st.none(), st.text(max_size=12)),
    ),
    fields=st.dictionaries(
        st.sampled_from(["city", "region", "ivr_region", "ivr_choice", "form", "line", "x"]),
        st.one_of(st.none(), st.integers(), any_text, st.lists(st.text(max_size=5), max_size=3)),
        max_size=4,
    ),
    rating=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    received_at=st.one_of(st.none(), times),
)


@FAST
@given(appeal=appeals, now=times)
def test_any_appeal_any_time_gets_an_explained_decision(appeal: AppealInput, now: datetime) -> None:
    decision = sample().decide(appeal, now=now, state=MemoryAssignmentState())
    assert decision.trace
    assert all(step.message for step in decision.trace)
    if decision.filtered is None:
        assert decision.assignee is not None
        assert decision.target is not None
        assert {"region", "topic", "assign", "target"} <= {t.step for t in decision.trace}
    else:
        assert decision.trace[0].step == "filter"


@FAST
@given(raw=phones)
def test_any_phone_string_parses_or_is_refused(raw: str | None) -> None:
    phone = parse_phone(raw)
    if phone is not None:
        assert phone.e164.startswith("+7") and len(phone.national) == 10


@FAST
@given(text=any_text)
def test_any_text_phone_search(text: str) -> None:
    for phone in phones_in_text(text):
        assert phone.e164 == "+7" + phone.national
