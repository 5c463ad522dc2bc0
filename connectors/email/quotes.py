"""Cutting the quoted history off a reply, so the CRM comment shows only what is new.

A reply ends where the first of these begins (table-driven; Russian and English clients):
a header line of the quoted message ("On … wrote:", "… пишет:", "-----Original Message-----",
Outlook's "From: … Sent: …" block), a run of ``>`` lines, or a signature separator ``-- ``.
"""

from __future__ import annotations

import re

CUT_MARKERS = [
    re.compile(r"^\s*-{2,}\s*(Original Message|Исходное сообщение|Пересылаемое сообщение)", re.I),
    re.compile(
        r"^\s*(On|В|Вт|Пн|Ср|Чт|Пт|Сб|Вс)\b.{0,200}(wrote|пишет|написал[аи]?)\s*:?\s*$", re.I
    ),
    re.compile(r"^.{0,200}\b(wrote|пишет|написал[аи]?)\s*:\s*$", re.I),
    re.compile(r"^.{0,200}<[^<>\s]+@[^<>\s]+>\s*:\s*$"),  # Gmail: "пн, 3 июн. … <a@b.ru>:"
    re.compile(r"^\s*(From|От|Кому|Sent|Отправлено)\s*:.+$", re.I),
    re.compile(r"^-- ?$"),  # the signature separator (RFC 3676 §4.3)
    re.compile(
        r"^\s*(Отправлено|Sent) (с|from) (моего )?(iPhone|iPad|Android|Яндекс|Mail\.ru).*$", re.I
    ),
]


def strip_quoted(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if any(m.match(line) for m in CUT_MARKERS):
            # "From:" alone is also an ordinary word at a line start: cut only an Outlook block.
            if line.lstrip().lower().startswith(("from:", "от:")) and not _header_block(lines, i):
                kept.append(line)
                continue
            break
        if line.startswith(">"):
            rest = [x for x in lines[i:] if x.strip()]
            if all(x.startswith(">") for x in rest):
                break
            continue  # an inline quote between the customer's own lines
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()  # never turn a message into nothing


def _header_block(lines: list[str], i: int) -> bool:
    window = " ".join(lines[i : i + 4]).lower()
    return any(k in window for k in ("sent:", "отправлено:", "subject:", "тема:", "date:", "дата:"))
