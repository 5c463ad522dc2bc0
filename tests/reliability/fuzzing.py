"""Hypothesis strategies that mutate recorded platform payloads the way broken or hostile senders
do: wrong types, missing keys, huge strings, deep nesting, invalid UTF-8, truncated bodies and
Unicode tricks (RTL marks, zero-width joiners, homoglyph digits in phone numbers, NUL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "fixtures"

TRICKY_TEXT = [
    "\u202eнавакансия\u202c",  # RTL override
    "за\u200dявка\u200b",  # zero-width joiner and space
    "+7 9\u04066 123-45-67",  # Cyrillic І in place of 1
    "+7\u00a0(916)\u2007123\u201145\u201167",  # no-break spaces, figure space, non-breaking hyphen
    "８９１６１２３４５６７",  # full-width digits
    "\u0000nul\u0000",
    "\ud800",  # a lone surrogate (valid JSON escape, invalid Unicode)
    "e\u0301\u0301\u0301" * 50,  # stacked combining marks
    "💬" * 1000,
    "A" * 200_000,
]
WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Seed:
    channel: str
    name: str
    body: bytes
    content_type: str


def _form_seeds() -> list[Seed]:
    urlencoded = "name=Иван&phone=89161234567&message=Здравствуйте".encode()
    as_json = json.dumps({"name": "Иван", "phone": "+79161234567", "message": "Вопрос"}).encode()
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="message"\r\n\r\n\xd0\x92\xd0\xbe\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    )
    return [
        Seed("form", "urlencoded", urlencoded, FORM_TYPE),
        Seed("form", "json", as_json, "application/json"),
        Seed("form", "multipart", multipart, "multipart/form-data; boundary=b"),
        Seed("tilda", "urlencoded", urlencoded + b"&tranid=1:2", FORM_TYPE),
    ]  # fmt: skip


def seeds() -> list[Seed]:
    found = _form_seeds()
    for path in sorted(FIXTURES.glob("*/*")):
        if path.suffix == ".json" and not path.name.endswith(".headers.json"):
            found.append(Seed(path.parent.name, path.stem, path.read_bytes(), "application/json"))
        elif path.suffix == ".eml":
            found.append(Seed(path.parent.name, path.stem, path.read_bytes(), "message/rfc822"))
    return found


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _replace(value[head], rest, new, delete=delete)
        return copy
    copy_list = list(value)
    if delete and not rest:
        copy_list.pop(head)
    else:
        copy_list[head] = _replace(value[head], rest, new, delete=delete)
    return copy_list


def _deep_text(depth: int) -> str:
    return '{"a": [' * depth + '"bottom"' + "]}" * depth


@st.composite
def mutated(draw: st.DrawFn, seed: Seed) -> bytes:
    """One mutation of the seed's body."""
    body = seed.body
    try:
        doc = json.loads(body) if seed.content_type == "application/json" else None
    except ValueError:
        doc = None
    how = draw(
        st.sampled_from(
            ["replace", "delete", "deep", "bytes", "truncate", "utf8"]
            if doc is not None
            else ["bytes", "truncate", "utf8", "tricky"]
        )
    )
    if how in ("replace", "delete", "deep") and doc is not None:
        path = draw(st.sampled_from(_paths(doc)))
        if how == "delete" and path:
            doc = _replace(doc, path, None, delete=True)
        elif how == "deep":
            # Spliced in as text: the JSON encoder itself would refuse to nest this deep.
            depth = draw(st.integers(50, 5000))
            doc = _replace(doc, path, "\x00DEEP\x00")
            text = json.dumps(doc).replace('"\\u0000DEEP\\u0000"', _deep_text(depth))
            return text.encode()
        else:
            doc = _replace(doc, path, draw(WRONG_VALUES))
        return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if how == "truncate":
        return body[: draw(st.integers(0, max(0, len(body) - 1)))]
    if how == "utf8":
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        return body[:at] + junk + body[at:]
    if how == "tricky":
        text = draw(st.sampled_from(TRICKY_TEXT))
        at = draw(st.integers(0, len(body)))
        return body[:at] + text.encode("utf-8", "surrogatepass") + body[at:]
    at = draw(st.integers(0, len(body)))
    return body[:at] + draw(st.binary(min_size=1, max_size=64)) + body[at:]
