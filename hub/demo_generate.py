"""`clienthub demo --generate N`: a realistic history of appeals for demos and the UI benchmark.

Routing a million appeals one by one would take longer than the demo is worth, so a few thousand
distinct appeals ("templates": channel, source, text, author kind, fields) are routed for real by
the published rule set, and the N rows are drawn from them with their own authors, ids, times,
states and delivery figures. Each row therefore carries a genuine decision and Russian trace.
Rows go in with plain bulk inserts through shadow tables whose JSON columns take pre-serialised
text, in id order with times rising, spread over the last months as a real history would be.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    MetaData,
    Table,
    func,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

from hub.db import session_scope
from hub.models import Appeal, Job, RawEvent
from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.types import AppealInput, AuthorInput, Decision
from hub.storage import rulesets
from hub.timeutil import utcnow

PHRASES: dict[str, list[str]] = {
    "vacancy": [
        "Здравствуйте! Хочу устроиться к вам продавцом{city}, есть вакансии?",
        "Ищу работу кассиром{city}, какой график и зарплата?",
        "Добрый день, вы ещё набираете грузчиков{store}? Могу выйти на работу с понедельника",
    ],
    "complaint_quality": [
        "Купила творог{store}, а он просроченный, срок годности истёк неделю назад",
        "В хлебе плесень, куплен сегодня{store}. Безобразие!",
        "Отравились курицей из вашего магазина{city}, мясо было с неприятным запахом",
    ],
    "complaint_staff": [
        "Кассир{store} нахамила и отказалась менять товар, хочу оставить жалобу на персонал",
        "Охранник грубит покупателям{city}, продавцы не обращают внимания на очередь",
    ],
    "price_mismatch": [
        "На ценнике одна цена, а на кассе пробили другую{store}. Верните разницу",
        "Цена на кассе не совпадает с ценником на полке, акционный товар пробили по полной цене",
    ],
    "loyalty_card": [
        "Не начисляются бонусы на карту лояльности после покупки{store}",
        "Приложение не показывает бонусы, карта заблокирована, как восстановить?",
    ],
    "rent": [
        "Предлагаем в аренду помещение 300 м² на первом этаже{city}, арендная ставка договорная",
        "Сдам торговое помещение под магазин{city}, рассмотрю долгосрочную аренду",
    ],
    "supplier": [
        "Мы производитель молочной продукции, хотим стать поставщиком сети, пришлите условия",
        "Предлагаем поставки овощей от фермерского хозяйства, готовы отправить прайс",
    ],
    "assortment_wish": [
        "Добавьте, пожалуйста, в ассортимент безлактозное молоко{store}",
        "Хотелось бы, чтобы у вас продавался нормальный кофе в зёрнах{city}",
    ],
    "gratitude": [
        "Огромное спасибо продавцу{store} за помощь, очень вежливый персонал!",
        "Благодарю сотрудников магазина{city}, всегда чисто и приятно",
    ],
    "": [
        "Подскажите, до скольки работает магазин{store}?",
        "Здравствуйте, у вас есть парковка{city}?",
        "Добрый вечер",
        "Участвую в конкурсе! #конкурс",
        "Заработок в интернете от 5000 в день на дому, пиши в личку",
    ],
}
NAMES = ["Иван", "Сергей", "Дмитрий", "Алексей", "Ольга", "Анна", "Елена", "Мария", "Татьяна"]
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов"]
DELIVERY_ERRORS = [
    "Bitrix24 QUERY_LIMIT_EXCEEDED: Too many requests",
    "Bitrix24 недоступен: ReadTimeout после 30 с",
    "Bitrix24 400: ACCESS_DENIED: Access denied",
]
_meta = MetaData()


class _JsonText(TypeDecorator[Any]):
    """A JSON column fed text that is already JSON (serialised once per template, not per row)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


def _shadow(table: Table) -> Table:
    """The same table whose JSON columns take ready JSON text (PostgreSQL path; SQLite rows go
    straight to the driver)."""
    cols = [
        Column(
            c.name, _JsonText() if isinstance(c.type, JSON) else c.type, primary_key=c.primary_key
        )
        for c in table.columns
    ]
    return Table(table.name, _meta, *cols)


APPEALS, RAWS, JOBS = (_shadow(t.__table__) for t in (Appeal, RawEvent, Job))  # type: ignore[attr-defined]


def _defaults(model: type[Any], table: Table) -> dict[str, Any]:
    """Values for the columns a demo row does not set (other features add columns): the
    model's own defaults, JSON as text."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in table.c or name == "id":
            continue
        value = info.default_factory() if info.default_factory else info.default
        if hasattr(value, "value"):  # enums
            value = value.value
        out[name] = json.dumps(value) if isinstance(value, dict | list) else value
    return out


APPEAL_DEFAULTS = _defaults(Appeal, APPEALS)


@dataclass
class Template:
    channel: str
    source: str
    kind: str
    text: str
    fields: dict[str, Any]
    rating: int | None
    with_phone: bool
    decision: Decision
    trace_json: str
    target_json: str
    tags_json: str


def _sources(rules: CompiledRuleSet, rng: random.Random) -> Iterator[tuple[str, str, str]]:
    """(channel, source, city-or-store phrase context) drawn with realistic channel weights."""
    model = rules.model
    stores = model.stores
    region_src = [(s.split(":", 1), r) for r in model.regions for s in r.sources]
    while True:
        store = rng.choice(stores)
        roll = rng.random()
        if roll < 0.35:
            (channel, source), _region = rng.choice(region_src)
            kind = "comment" if channel == "vk" and rng.random() < 0.3 else "message"
            yield channel, source, kind
        elif roll < 0.55 and store.sources:
            channel = rng.choice(sorted(store.sources))
            kind = "review" if channel in ("twogis", "yandex") else "message"
            yield channel, store.sources[channel], kind
        elif roll < 0.65:
            yield "ok", "semeyny_rynok", rng.choice(["message", "comment"])
        elif roll < 0.78:
            yield "tilda", "site", "form"
        elif roll < 0.88:
            yield "email", "support", "email"
        else:
            yield "mango", "hotline", "call"


def build_templates(rules: CompiledRuleSet, count: int, rng: random.Random) -> list[Template]:
    """Route ``count`` distinct appeals for real (weekday daytime, so staff are on duty)."""
    model = rules.model
    state = MemoryAssignmentState()
    topics = list(PHRASES)
    templates: list[Template] = []
    sources = _sources(rules, rng)
    moment = datetime(2025, 11, 12, 9, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Moscow
    for _ in range(count):
        channel, source, kind = next(sources)
        topic = rng.choice(topics)
        store = rng.choice(model.stores)
        phrase = rng.choice(PHRASES[topic])
        text = phrase.format(
            city=f" в городе {store.city}" if rng.random() < 0.5 else "",
            store=f" в магазине №{store.id}" if rng.random() < 0.4 else "",
        )
        fields: dict[str, Any] = {}
        rating = None
        if kind == "review":
            rating = rng.choice([1, 2, 3, 4, 5, 5, 5]) if topic != "gratitude" else 5
        if kind == "form":
            fields = {"city": store.city, "form": {"vacancy": "vacancy", "rent": "rent"}.get(topic)}
            fields = {k: v for k, v in fields.items() if v}
        if kind == "call":
            fields = {"ivr_choice": rng.choice(["1", "2", "3", ""]), "line": store.phone_line}
            fields = {k: v for k, v in fields.items() if v}
            text = f"Звонок на горячую линию. {text}" if rng.random() < 0.5 else ""
        with_phone = kind in ("call", "form") or rng.random() < 0.2
        appeal = AppealInput(
            channel=channel,
            source=source,
            kind=kind,
            text=text,
            author=AuthorInput(name="Покупатель", phone="+79161234567" if with_phone else None),
            fields=fields,
            rating=rating,
            received_at=moment,
        )
        decision = rules.decide(
            appeal, now=moment + timedelta(minutes=rng.randint(0, 360)), state=state
        )
        trace = [
            {"step": t.step, "rule": t.rule, "message": t.message, "data": t.data}
            for t in decision.trace
        ]
        target = decision.target
        templates.append(
            Template(
                channel,
                source,
                kind,
                text,
                fields,
                rating,
                with_phone,
                decision,
                json.dumps(trace, ensure_ascii=False),
                json.dumps(
                    {"entity": target.entity, "pipeline": target.pipeline, "stage": target.stage}
                    if target
                    else {}
                ),
                json.dumps(decision.tags, ensure_ascii=False),
            )
        )
    return templates


def _times(n: int, months: int, now: datetime, rng: random.Random) -> list[datetime]:
    """Rising receive times over ``months``, busier in the daytime (Moscow)."""
    start = now - timedelta(days=30 * months)
    span_days = (now - start).days
    hours = [0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1, 2, 4, 6, 7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 4, 3, 1, 0.5]
    picks = rng.choices(range(24), weights=hours, k=n)
    stamps = sorted(
        span_days * rng.random() // 1 * 86400 + (h - 3) * 3600 + rng.random() * 3600 for h in picks
    )
    out = [start + timedelta(seconds=s) for s in stamps]
    return [t if t < now else now - timedelta(seconds=rng.random() * 600) for t in out]


def _naive(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC).replace(tzinfo=None)


def _rows(
    appeal_id: int, t: datetime, tpl: Template, now: datetime, rng: random.Random, v: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    d = tpl.decision
    first = rng.randrange(len(NAMES))
    name = f"{NAMES[first]} {rng.choice(SURNAMES)}{'а' if first >= 4 else ''}"
    phone = f"+79{rng.randint(0, 999_999_999):09d}" if tpl.with_phone else None
    platform_id = f"id{rng.randint(1, 900_000_000)}" if tpl.channel in ("vk", "ok") else None
    age = now - t
    state, delivery = ("filtered", "none") if d.filtered else ("routed", "pending")
    visible = reply = None
    error = None
    entity_id = None
    job: dict[str, Any] | None = None
    if not d.filtered and age > timedelta(minutes=10):
        roll = rng.random()
        if roll < 0.004:
            delivery, error = "failed", rng.choice(DELIVERY_ERRORS)
            job = {"state": "dead", "last_error": error, "attempts": 14}
        else:
            delivery, state, entity_id = "delivered", "delivered", appeal_id
            visible = t + timedelta(seconds=rng.lognormvariate(2.5, 0.8))
            if roll < 0.75 and age > timedelta(hours=2):
                state = "answered"
                reply = t + timedelta(
                    seconds=min(age.total_seconds(), rng.lognormvariate(8.5, 1.2))
                )
            if age < timedelta(days=7):
                job = {"state": "done", "last_error": None, "attempts": 1}
    elif not d.filtered:
        job = {"state": "queued", "last_error": None, "attempts": 0}
    ext = f"demo-{appeal_id}"
    body = json.dumps({"demo": True, "id": ext, "text": tpl.text, "from": name}, ensure_ascii=False)
    raw = {
        "id": appeal_id, "channel": tpl.channel, "source": tpl.source, "external_id": ext,
        "event_type": tpl.kind, "headers": "{}", "content_type": "application/json",
        "body": body.encode(), "received_at": _naive(t), "state": "parsed", "state_reason": None,
    }  # fmt: skip
    appeal = {
        **APPEAL_DEFAULTS, "id": appeal_id, "raw_event_id": appeal_id, "channel": tpl.channel,
        "source": tpl.source,
        "kind": tpl.kind, "external_id": ext, "thread_key": f"demo:{appeal_id}", "is_edit": False,
        "author_name": name, "author_phone": phone, "author_email": None,
        "author_platform_id": platform_id, "text": tpl.text, "attachments": "[]",
        "rating": tpl.rating, "fields": json.dumps(tpl.fields, ensure_ascii=False),
        "received_at": _naive(t), "created_at": _naive(t), "state": state, "rules_version": v,
        "topic": d.topic, "region": d.region, "store": d.store, "department": d.department,
        "assignee_id": d.assignee.id if d.assignee else None,
        "assignee_name": d.assignee.name if d.assignee else None,
        "bitrix_user_id": d.assignee.bitrix_user_id if d.assignee else None,
        "target": tpl.target_json, "tags": tpl.tags_json, "filtered_reason": d.filtered,
        "trace": tpl.trace_json, "routed_at": _naive(t), "delivery_state": delivery,
        "crm_entity": (d.target.entity if d.target else "deal") if entity_id else None,
        "crm_entity_id": entity_id, "crm_contact_id": entity_id, "crm_comment_id": None,
        "crm_visible_at": _naive(visible), "delivery_error": error, "first_reply_at": _naive(reply),
    }  # fmt: skip
    if job is not None:
        done = job["state"] in ("done", "dead")
        job = {
            "kind": "deliver.appeal", "key": f"appeal:{appeal_id}",
            "payload": json.dumps({"appeal_id": appeal_id}), "run_at": _naive(t),
            "locked_by": None, "locked_until": None, "created_at": _naive(t),
            "started_at": _naive(t) if done else None,
            "finished_at": _naive(visible or t) if done else None, "appeal_id": appeal_id, **job,
        }  # fmt: skip
    return raw, appeal, job


def generate(
    engine: Engine,
    n: int,
    *,
    months: int = 6,
    seed: int = 1,
    templates: int = 3000,
    chunk: int = 20_000,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
    step: Callable[[str], None] | None = None,
) -> int:
    """Insert ``n`` appeals (with raw events and delivery jobs); returns the first new id.

    One transaction per ``chunk`` rows keeps the bulk load fast; ``progress`` hears every
    ``batch`` rows inserted, so a bar moves every second or so rather than once a minute, and
    ``step`` hears the preparation (compiling the rules, routing the templates)."""
    say = step or (lambda _message: None)
    rng = random.Random(seed)
    with session_scope(engine, read_only=True) as s:
        version_id = rulesets.published_id(s)
        if version_id is None:
            raise LookupError("нет опубликованной версии правил: clienthub rules publish")
        files = rulesets.export_files(session=s, version_id=version_id)[1]
        conn = s.connection()
        start_id = max(_max_id(conn, RAWS), _max_id(conn, APPEALS)) + 1
    say(f"компилирую правила версии {version_id} ({len(files)} файлов)…")
    rules = compile_files(files, version=version_id)
    size = min(templates, max(50, n))
    say(f"маршрутизирую {size} образцов обращений правилами версии {version_id}…")
    pool = build_templates(rules, size, rng)
    now = utcnow()
    times = _times(n, months, now, rng)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # A bulk load, not appeals from customers: a crash loses only demo rows. A large
            # page cache keeps the appeals' indexes in memory while they grow.
            _pragma(conn, "synchronous=OFF", "cache_size=-400000")
        try:
            for lo in range(0, n, chunk):
                with conn.begin():
                    for first in range(lo, min(n, lo + chunk), batch):
                        last = min(n, lo + chunk, first + batch)
                        raws, appeals, jobs = [], [], []
                        for i in range(first, last):
                            tpl = rng.choice(pool)
                            raw, appeal, job = _rows(
                                start_id + i, times[i], tpl, now, rng, version_id
                            )
                            raws.append(raw)
                            appeals.append(appeal)
                            if job is not None:
                                jobs.append(job)
                        for table, rows in ((RAWS, raws), (APPEALS, appeals), (JOBS, jobs)):
                            _insert(conn, table, rows)
                        if progress:
                            progress(len(appeals))
            with conn.begin():
                if not sqlite:
                    for table in ("raw_events", "appeals"):
                        conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                conn.exec_driver_sql("ANALYZE")
        finally:
            if sqlite:
                _pragma(conn, "synchronous=FULL", "cache_size=-2000")
    return start_id


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """SQLite: the driver's executemany (SQLAlchemy's per-row work would double the time)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), rows)
        return
    names = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    stamp = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a naive datetime in SQLite
    data = [
        tuple(v.strftime(stamp) if isinstance(v, datetime) else v for v in row.values())
        for row in rows
    ]
    conn.exec_driver_sql("SELECT 1")  # opens the transaction (BEGIN IMMEDIATE) first
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(sql, data)
    cursor.close()


def _pragma(conn: Connection, *pragmas: str) -> None:
    """Outside any transaction (SQLite refuses to change the safety level inside one)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    for pragma in pragmas:
        raw.execute(f"PRAGMA {pragma}")


def _max_id(conn: Connection, table: Table) -> int:
    return int(conn.execute(func.coalesce(func.max(table.c.id), 0).select()).scalar() or 0)
