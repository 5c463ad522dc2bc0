"""Mixed webhook traffic as the platforms send it, and the exactly-once audit of a run.

Events are VK messages and Telegram messages in dialogues of a few messages each (one deal per
dialogue, one comment per message) and site forms (one deal each). A seeded share of the events is
sent again with the same platform id, as a platform does when it did not read our 2xx in time:
half at the same moment (the racing retry), half after the first answer. A request that fails on
the wire (a web process killed under it) is retried against the other web process, as platforms
retry, until it is acknowledged: an event counts as *in* only once a 2xx was read for it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Appeal, Job, RawEvent
from hub.storage import sources as sources_store

VK_GROUP = 220001012  # routing_rules/sample: store 1012, Moscow
VK_SOURCE = f"club{VK_GROUP}"
VK_SECRET = "reliability-vk-secret"
TG_SOURCE = "shopbot"
TG_SECRET = "reliability_tg_secret"
TEXTS = [
    "Здравствуйте! Есть ли вакансии продавца в вашем магазине?",
    "Добрый день, на кассе пробили товар дважды, верните деньги",
    "Спасибо кассиру Марине за вежливость",
    "Предлагаем в аренду помещение 120 м² под магазин",
    "Когда привезут свежий хлеб? Полки пустые с утра",
]


@dataclass(frozen=True)
class Event:
    """One platform event: where it goes and its bytes; ``thread`` groups one dialogue."""

    key: str
    channel: str
    source: str
    body: bytes
    headers: dict[str, str]
    thread: str

    @property
    def path(self) -> str:
        return f"/hooks/{self.channel}/{self.source}"


def configure_sources(engine: Engine, *, vk_api: str = "", tg_api: str = "") -> None:
    """The VK community and the Telegram bot the traffic comes from (secrets encrypted with the
    cluster's key: the caller's CLIENTHUB_SECRET_KEY must be the cluster's)."""
    vk_config: dict[str, Any] = {"group_id": VK_GROUP, "confirmation": "code"}
    if vk_api:
        vk_config["api_url"] = vk_api
    tg_config: dict[str, Any] = {"api_url": tg_api} if tg_api else {}
    with session_scope(engine) as s:
        sources_store.upsert(
            s, channel="vk", source=VK_SOURCE, config=vk_config,
            secrets={"secret": VK_SECRET, "token": "vk1.a.reliability"},
        )  # fmt: skip
        sources_store.upsert(
            s, channel="telegram", source=TG_SOURCE, config=tg_config,
            secrets={"token": "777:reliability", "webhook_secret": TG_SECRET},
        )  # fmt: skip
        sources_store.upsert(s, channel="form", source="site")


def _vk(n: int, peer: int, text: str) -> Event:
    body = {
        "group_id": VK_GROUP,
        "type": "message_new",
        "event_id": f"ev{n:07d}",
        "v": "5.199",
        "secret": VK_SECRET,
        "object": {
            "message": {
                "date": int(time.time()),
                "from_id": peer,
                "id": 100000 + n,
                "out": 0,
                "attachments": [],
                "conversation_message_id": n,
                "fwd_messages": [],
                "peer_id": peer,
                "random_id": 0,
                "text": text,
            }
        },
    }
    return Event(
        f"vk:{n}", "vk", VK_SOURCE, json.dumps(body, ensure_ascii=False).encode(),
        {"content-type": "application/json"}, f"vk:{peer}",
    )  # fmt: skip


def _tg(n: int, chat: int, text: str) -> Event:
    body = {
        "update_id": 500000 + n,
        "message": {
            "message_id": n,
            "from": {"id": chat, "is_bot": False, "first_name": "Мария", "language_code": "ru"},
            "chat": {"id": chat, "type": "private", "first_name": "Мария"},
            "date": int(time.time()),
            "text": text,
        },
    }
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TG_SECRET}
    return Event(
        f"tg:{n}", "telegram", TG_SOURCE, json.dumps(body, ensure_ascii=False).encode(),
        headers, f"tg:{chat}",
    )  # fmt: skip


def _form(n: int, text: str) -> Event:
    body = urlencode(
        {"name": f"Клиент {n}", "phone": f"+7916{n:07d}", "message": f"{text} (заявка {n})"}
    ).encode()
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "idempotency-key": f"form-{n}",
    }
    return Event(f"form:{n}", "form", "site", body, headers, f"form:{n}")


def make_events(count: int, *, seed: int = 11, per_thread: int = 3, start: int = 0) -> list[Event]:
    """``count`` distinct events: 40 % VK, 30 % Telegram, 30 % forms, dialogues of up to
    ``per_thread`` messages, interleaved as they would arrive."""
    rng = random.Random(seed)
    events: list[Event] = []
    seen = Counter[str]()
    for n in range(start, start + count):
        text = f"{rng.choice(TEXTS)} #{n}"
        pick = n % 10
        if pick < 4:
            seen["vk"] += 1
            events.append(_vk(n, 700000000 + start + seen["vk"] // per_thread, text))
        elif pick < 7:
            seen["tg"] += 1
            events.append(_tg(n, 800000000 + start + seen["tg"] // per_thread, text))
        else:
            events.append(_form(n, text))
    rng.shuffle(events)
    return events


@dataclass
class SendReport:
    acknowledged: set[str] = field(default_factory=set)
    requests: int = 0
    wire_failures: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    retried: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def _send_until_acked(
    client: httpx.AsyncClient,
    urls: list[str],
    ev: Event,
    report: SendReport,
    rng: random.Random,
    deadline: float,
) -> None:
    attempt = 0
    while time.monotonic() < deadline:
        base = urls[(hash(ev.key) + attempt) % len(urls)]
        attempt += 1
        started = time.perf_counter()
        report.requests += 1
        try:
            r = await client.post(base + ev.path, content=ev.body, headers=ev.headers)
        except httpx.HTTPError:
            report.wire_failures += 1
            await asyncio.sleep(0.05 + rng.random() * 0.2)
            continue
        report.statuses[r.status_code] += 1
        if 200 <= r.status_code < 300:
            report.latencies.append(time.perf_counter() - started)
            report.acknowledged.add(ev.key)
            return
        if r.status_code < 500:
            raise AssertionError(f"{ev.key} refused with {r.status_code}: {r.text[:300]}")
        await asyncio.sleep(0.05 + rng.random() * 0.2)  # a 5xx: the platform retries later
    raise AssertionError(f"{ev.key} was never acknowledged")


async def send_all(
    urls: list[str] | Any,
    events: list[Event],
    *,
    retry_share: float = 0.10,
    concurrency: int = 32,
    seed: int = 5,
    timeout: float = 600.0,
    spread_seconds: float = 0.0,
) -> SendReport:
    """Post every event (and the retried share again) with ``concurrency`` connections.
    ``urls`` may be a callable returning the live web URLs (a test kills and restarts them)."""
    rng = random.Random(seed)
    report = SendReport()
    # Pacing: each connection waits this long between events, so the run lasts spread_seconds.
    pause = spread_seconds * concurrency / max(1, len(events))
    deadline = time.monotonic() + timeout
    retried = {ev.key for ev in events if rng.random() < retry_share}
    report.retried = len(retried)
    queue: asyncio.Queue[tuple[Event, bool]] = asyncio.Queue()
    for ev in events:
        queue.put_nowait((ev, ev.key in retried))
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), limits=limits) as c:

        async def one_worker() -> None:
            while not queue.empty():
                ev, again = queue.get_nowait()
                if pause:
                    await asyncio.sleep(pause)
                live = urls() if callable(urls) else urls
                if again and rng.random() < 0.5:  # the racing retry: both at once
                    await asyncio.gather(
                        _send_until_acked(c, live, ev, report, rng, deadline),
                        _send_until_acked(c, live[::-1], ev, report, rng, deadline),
                    )
                    continue
                await _send_until_acked(c, live, ev, report, rng, deadline)
                if again:  # the late retry: the platform did not read our answer
                    await _send_until_acked(c, live[::-1], ev, report, rng, deadline)

        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    report.seconds = time.monotonic() - started
    return report


@dataclass
class Audit:
    """The exactly-once figures of one run."""

    events_in: int
    raw_events: int
    appeals: int
    delivered: int
    threads: int
    deals_out: int
    comments_out: int
    duplicate_deals: int
    duplicate_comments: int
    lost: int
    dead_jobs: int
    pending_jobs: int

    def row(self) -> dict[str, int]:
        return dict(self.__dict__)


def audit(engine: Engine, events: list[Event], record: Any) -> Audit:
    """Compare what was acknowledged, what ClientHub stored and what the portal holds."""
    with session_scope(engine, read_only=True) as s:
        raw = int(s.execute(select(func.count()).select_from(RawEvent)).scalar_one())
        rows = s.execute(
            select(
                Appeal.id, Appeal.channel, Appeal.source, Appeal.thread_key, Appeal.crm_entity_id,
                Appeal.delivery_state, Appeal.state,
            )
        ).all()  # fmt: skip
        dead = int(
            s.execute(select(func.count()).select_from(Job).where(Job.state == "dead")).scalar_one()
        )
        pending = int(
            s.execute(
                select(func.count()).select_from(Job).where(Job.state.in_(["queued", "running"]))
            ).scalar_one()
        )
    delivered = [r for r in rows if r.delivery_state == "delivered"]
    deal_of: dict[str, set[int]] = {}
    for r in delivered:
        deal_of.setdefault(f"{r.channel}:{r.source}:{r.thread_key or r.id}", set()).add(
            int(r.crm_entity_id)
        )
    markers = record.comment_appeals()
    our_deals = {i for ids in deal_of.values() for i in ids}
    portal_items = [i for i in record.items if i["type"] in (1, 2)]
    threads = len({ev.thread for ev in events})
    return Audit(
        events_in=len(events),
        raw_events=raw,
        appeals=len(rows),
        delivered=len(delivered),
        threads=threads,
        deals_out=len(portal_items),
        comments_out=len(record.comments),
        duplicate_deals=sum(len(v) - 1 for v in deal_of.values())
        + len([i for i in portal_items if i["id"] not in our_deals]),
        duplicate_comments=sum(n - 1 for n in markers.values() if n > 1),
        lost=len(events) - len({r.id for r in delivered}),
        dead_jobs=dead,
        pending_jobs=pending,
    )


def print_table(title: str, rows: list[dict[str, Any]]) -> str:
    """A plain text table (the benchmarks print it; tests print it into the captured log)."""
    if not rows:
        return ""
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = [
        title,
        "  ".join(c.ljust(widths[c]) for c in cols),
        "  ".join("-" * widths[c] for c in cols),
        *("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols) for r in rows),
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return text
