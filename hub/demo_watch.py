"""What `clienthub demo` checks while it waits: the appeals in ClientHub's database (stored,
routed with a trace, filtered or delivered, chat opened, call registered) and the items in the
sandbox portal, matched to the scripted appeals; then the operators' replies, and the summary.

Everything is read, never assumed: a scripted appeal counts as delivered only when its deal or
lead answers ``crm.item.get`` in the sandbox with ``originId`` = the appeal's id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.demo_script import APPEALS, Appeal
from hub.models import Appeal as Stored
from hub.models import Reply, TelephonyCall

CHANNEL_NAMES = {
    "vk": "ВКонтакте", "telegram": "Telegram", "ok": "Одноклассники", "form": "Форма сайта",
    "tilda": "Tilda", "email": "E-mail", "twogis": "2ГИС", "yandex": "Яндекс Карты",
    "mango": "Mango Office", "uis": "UIS", "cti": "Asterisk (CTI)",
}  # fmt: skip
CALLS = ("mango", "uis", "cti")
Echo = Callable[[str], None]


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


def _step_done(state: Any) -> bool:
    """A telephony step is ``"done"``, or a dict with ``done`` (attachRecord keeps the file)."""
    return state == "done" or (isinstance(state, dict) and bool(state.get("done")))


def matches(spec: Appeal, row: Stored) -> bool:
    """Which stored appeal is which scripted one: calls by the caller, the rest by the text."""
    if row.channel != spec.channel:
        return False
    if spec.channel in CALLS:
        return _digits(spec.author)[-10:] == _digits(row.author_phone)[-10:]
    return spec.text[:40] in (row.text or "")


@dataclass
class Status:
    spec: Appeal
    row: Stored | None = None
    call: TelephonyCall | None = None
    crm: dict[str, Any] | None = None  # the sandbox's item, once seen there
    replies: list[Reply] = field(default_factory=list)
    reply_seen: bool = False  # the platform fake holds the reply

    @property
    def routed(self) -> bool:
        return self.row is not None and self.row.routed_at is not None and bool(self.row.trace)

    @property
    def filtered(self) -> bool:
        return self.row is not None and self.row.state == "filtered"

    @property
    def in_crm(self) -> bool:
        return self.crm is not None

    @property
    def call_done(self) -> bool:
        """The call is registered and finished in Bitrix24 telephony, recording attached."""
        steps = (self.call.steps or {}) if self.call else {}
        return all(_step_done(steps.get(s)) for s in self.spec.call_steps)

    @property
    def settled(self) -> bool:
        """Everything ClientHub does on its own is done for this appeal."""
        if not self.routed:
            return False
        if self.spec.filtered:
            return self.filtered
        chat_ok = self.spec.reply is None or bool(self.row and self.row.b24_chat_id)
        return self.in_crm and self.call_done and chat_ok


class Watch:
    def __init__(
        self,
        engine: Engine,
        sandbox: str,
        sources: set[tuple[str, str]],
        after: int,
        *,
        rest: str,
        recorded_mango: bool = False,
    ) -> None:
        """``after``: the newest appeal id before the demo sent anything; ``rest``: the sandbox
        portal's inbound webhook (``…/rest/1/<code>``) the demo reads the CRM through."""
        self.engine, self.sandbox, self.sources, self.after = engine, sandbox, sources, after
        self.rest = rest
        self.status = [Status(spec) for spec in APPEALS]
        if recorded_mango:
            for st in self.status:
                if st.spec.key == "mango-call":
                    st.spec = replace(st.spec, call_steps=(*st.spec.call_steps, "record"))
        self._crm_seen: dict[int, dict[str, Any]] = {}

    # -- reading ---------------------------------------------------------------------------
    def refresh(self) -> None:
        with session_scope(self.engine, read_only=True) as s:
            rows = [
                r
                for r in s.execute(select(Stored).where(Stored.id > self.after)).scalars()
                if (r.channel, r.source) in self.sources and not r.is_edit
            ]
            ids = [r.id for r in rows]
            found = s.execute(select(TelephonyCall).where(TelephonyCall.appeal_id.in_(ids)))
            calls = {c.appeal_id: c for c in found.scalars()}
            replies = list(s.execute(select(Reply).where(Reply.appeal_id.in_(ids))).scalars())
        taken: set[int] = set()
        for st in self.status:
            st.row = next((r for r in rows if r.id not in taken and matches(st.spec, r)), None)
            if st.row is None:
                continue
            taken.add(st.row.id)  # type: ignore[arg-type]
            st.call = calls.get(st.row.id)  # type: ignore[arg-type]
            st.replies = [r for r in replies if r.appeal_id == st.row.id]
            if st.row.crm_entity_id and st.row.delivery_state == "delivered":
                st.crm = self._crm_item(st.row)

    def _crm_item(self, row: Stored) -> dict[str, Any] | None:
        key = int(row.crm_entity_id or 0)
        if key in self._crm_seen:
            return self._crm_seen[key]
        entity = 1 if row.crm_entity == "lead" else 2
        try:
            r = httpx.post(
                f"{self.rest}/crm.item.get.json",
                json={"entityTypeId": entity, "id": key},
                timeout=10,
            )
            item = r.json().get("result", {}).get("item") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        if item and str(item.get("originId")) == str(row.id):
            self._crm_seen[key] = item
            return item
        return None

    def progress(self) -> str:
        st = self.status
        stored = sum(s.row is not None for s in st)
        routed = sum(s.routed for s in st)
        filtered = sum(s.filtered for s in st)
        crm = sum(s.in_crm for s in st)
        want_crm = sum(not s.spec.filtered for s in st)
        parts = [f"сохранено {stored}/{len(st)}", f"маршрутизировано {routed}",
                 f"отфильтровано {filtered}", f"в Битрикс24 {crm}/{want_crm}"]  # fmt: skip
        chats = [s for s in st if s.spec.reply]
        if chats:
            parts.append(f"чатов {sum(bool(s.row and s.row.b24_chat_id) for s in chats)}"
                         f"/{len(chats)}")  # fmt: skip
        calls = [s for s in st if s.spec.call_steps]
        parts.append(f"звонков в телефонии {sum(s.call_done for s in calls)}/{len(calls)}")
        return ", ".join(parts)

    def missing(self) -> list[str]:
        out = []
        for s in self.status:
            name = f"{s.spec.label} («{s.spec.text[:40]}…»)"
            if s.row is None:
                out.append(f"{name}: не сохранено")
            elif not s.routed:
                out.append(f"{name}: не маршрутизировано (#{s.row.id})")
            elif s.spec.filtered and not s.filtered:
                out.append(f"{name}: должно было отфильтроваться (#{s.row.id})")
            elif not s.spec.filtered and not s.in_crm:
                why = s.row.delivery_error or s.row.state
                out.append(f"{name}: нет в Битрикс24 (#{s.row.id}: {why})")
            elif not s.call_done:
                err = (s.call.last_error or s.call.recording_error) if s.call else None
                out.append(f"{name}: звонок не зарегистрирован в телефонии ({err or 'ждём'})")
            elif s.spec.reply and not s.row.b24_chat_id:
                out.append(f"{name}: нет чата открытой линии (#{s.row.id})")
            elif s.spec.reply and not s.reply_seen:
                states = ", ".join(f"{r.state}: {r.last_error or ''}" for r in s.replies)
                out.append(f"{name}: ответ оператора не дошёл ({states or 'не получен'})")
        return out

    # -- waiting ---------------------------------------------------------------------------
    def wait(self, done: Callable[[], bool], deadline: float, echo: Echo, hint: str = "") -> bool:
        """Poll until ``done()``, printing the progress when it changes (and every 15 s)."""
        started, last, said = time.monotonic(), "", 0.0
        while True:
            self.refresh()
            if done():
                echo(f"  [{time.monotonic() - started:4.0f} с] {self.progress()}")
                return True
            now = time.monotonic()
            line = self.progress()
            if line != last or now - said > 15:
                extra = f" — {hint}" if hint and now - started > 5 else ""
                echo(f"  [{now - started:4.0f} с] {line}{extra}")
                last, said = line, now
            if now > deadline:
                return False
            time.sleep(1.0)


def operator_replies(watch: Watch, echo: Echo) -> list[Status]:
    """The operator answers each messenger dialogue in its Open Lines chat in the sandbox; the
    portal fires ``OnImConnectorMessageAdd`` at ClientHub, as Bitrix24 does."""
    sent = []
    for st in watch.status:
        if not st.spec.reply or st.row is None or not st.row.b24_chat_id:
            continue
        if st.replies:  # answered already (the demo was interrupted and run on the same data)
            sent.append(st)
            continue
        r = httpx.post(
            f"{watch.sandbox}/_sandbox/openlines/operator-message",
            json={"chat_id": st.row.b24_chat_id, "text": st.spec.reply},
            timeout=60,
        )
        ok = r.status_code == 200 and all(
            d.get("status") == 200 for d in r.json().get("deliveries", [])
        )
        mark = "✓" if ok else "✗"
        echo(f"  {mark} чат {st.row.b24_chat_id} ({CHANNEL_NAMES[st.spec.channel]}): "
             f"«{st.spec.reply[:50]}…»")  # fmt: skip
        sent.append(st)
    return sent


def summary_rows(watch: Watch) -> list[tuple[str, int, int, int, int, str]]:
    """Per channel: sent, stored, filtered, in Bitrix24, replies delivered/expected."""
    rows = []
    for channel, name in CHANNEL_NAMES.items():
        mine = [s for s in watch.status if s.spec.channel == channel]
        if not mine:
            continue
        want = sum(bool(s.spec.reply) for s in mine)
        got = sum(s.reply_seen for s in mine)
        rows.append((name, len(mine), sum(s.row is not None for s in mine),
                     sum(s.filtered for s in mine), sum(s.in_crm for s in mine),
                     f"{got}/{want}" if want else "—"))  # fmt: skip
    return rows


def print_summary(watch: Watch, echo: Echo) -> None:
    head = ("канал", "отправлено", "сохранено", "отфильтровано", "в Битрикс24", "ответы")
    rows = [head, *[(r[0], *map(str, r[1:])) for r in summary_rows(watch)]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for n, row in enumerate(rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        echo("  " + "  ".join(cells))
        if n == 0:
            echo("  " + "  ".join("-" * w for w in widths))
    echo("")
    for s in watch.status:
        if s.row is None:
            continue
        if s.filtered:
            echo(f"  #{s.row.id} {s.spec.label}: отфильтровано — {s.row.filtered_reason}")
        elif s.crm:
            kind = "лид" if s.row.crm_entity == "lead" else "сделка"
            who = f", ответственный {s.row.assignee_name}" if s.row.assignee_name else ""
            echo(f"  #{s.row.id} {s.spec.label} → {kind} {s.row.crm_entity_id} "
                 f"«{s.crm.get('title', '')}»{who}")  # fmt: skip
