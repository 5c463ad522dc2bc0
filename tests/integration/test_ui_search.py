"""Appeal search on the full-text index (migration 0004), both backends: an appeal far below the
newest 40,000 is found, Russian words in other forms, phones in every spelling, the index follows
changes and deletions, and keyset pages with filters and a search neither skip nor repeat."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.engine import Engine

from hub import migrations
from hub.db import session_scope
from hub.models import Appeal
from hub.storage import ui_queries as q

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
_ROW: dict[str, Any] = {
    "channel": "vk", "source": "club1", "kind": "message", "is_edit": False, "attachments": [],
    "fields": {}, "state": "routed", "target": {}, "tags": [], "labels": {}, "trace": [],
    "delivery_state": "none", "escalation_plan": [], "escalation_step": 0,
}  # fmt: skip


def bulk(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Plain multi-row inserts: tens of thousands of appeals in seconds, triggers included."""
    with session_scope(engine) as s:
        for lo in range(0, len(rows), 5000):
            batch = [
                {**_ROW, "created_at": T0, "received_at": T0, **r} for r in rows[lo : lo + 5000]
            ]
            s.execute(insert(Appeal), batch)


def search(engine: Engine, needle: str, **filters: Any) -> list[int]:
    with session_scope(engine, read_only=True) as s:
        page = q.appeal_page(s, flt=q.UiAppealFilter(q=needle, **filters), limit=50)
    return [r.id for r in page.rows]


def walk(engine: Engine, flt: q.UiAppealFilter, limit: int = 7) -> list[int]:
    """Every page of a list through its cursors."""
    seen: list[int] = []
    cursor = None
    with session_scope(engine, read_only=True) as s:
        for _ in range(1000):
            page = q.appeal_page(s, flt=flt, limit=limit, cursor=cursor)
            seen += [r.id for r in page.rows]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor
    raise AssertionError("the cursor never ended")


def test_an_old_appeal_is_found_by_word_forms_name_and_phone(engine: Engine) -> None:
    bulk(
        engine,
        [{"text": "Купила хлеб, а в нём плесень!", "author_name": "Пётр Смирнов",
          "author_phone": "8 (903) 123-45-67", "author_email": "Petr.Smirnov@mail.ru"}]
        + [{"text": f"Вопрос {i} про парковку у магазина", "author_name": "Анна"}
           for i in range(45_000)],
    )  # fmt: skip
    old = 1
    for needle in ("плесенью", "ПЛЕСЕНИ", "хлебом плесень", "Смирнову", "петра", "плес*"):
        assert search(engine, needle) == [old], needle
    for phone in ("+7 903 123-45-67", "8 903 123 45 67", "89031234567", "+79031234567"):
        assert search(engine, phone) == [old], phone
    assert search(engine, "903 123") == [old]  # the beginning of a number
    assert search(engine, "petr.smirnov@mail.ru") == [old]
    assert search(engine, "smirnov@mail.ru") == [old] and search(engine, "ivanov@mail.ru") == []
    assert search(engine, "пирог") == [] and search(engine, "!!!") == []
    assert len(search(engine, "парковки")) == 50  # another form of a word in every row


def test_the_index_follows_changes_and_deletions(engine: Engine) -> None:
    bulk(engine, [{"text": "Ёлка в магазине", "author_phone": None} for _ in range(3)])
    assert search(engine, "елки") == [3, 2, 1]
    with session_scope(engine) as s:
        s.execute(update(Appeal).where(Appeal.id == 2).values(author_phone="+7 916 000-11-22"))
        s.execute(update(Appeal).where(Appeal.id == 3).values(text="Сосна"))
        s.execute(update(Appeal).where(Appeal.id == 1).values(state="answered"))  # untouched
        s.execute(text("DELETE FROM appeals WHERE id = 1"))
    assert search(engine, "ёлка") == [2]
    assert search(engine, "89160001122") == [2]
    assert search(engine, "сосной") == [3]


def test_pages_with_a_period_filters_and_search_neither_skip_nor_repeat(engine: Engine) -> None:
    """Receive times are out of id order (late-polled reviews) and tie: the time cursor must
    carry both, the id cursor only ids."""
    rng = random.Random(4)
    rows = []
    for i in range(300):
        minutes = rng.choice([0, 5, 5, 10, 60, 61, 120]) + rng.randrange(0, 3000, 30)
        rows.append({
            "channel": rng.choice(["vk", "ok"]), "received_at": T0 + timedelta(minutes=minutes),
            "text": "Жалоба на кассира" if i % 3 else "Благодарность продавцу",
        })  # fmt: skip
    bulk(engine, rows)
    expected = sorted(
        (
            (r["received_at"], i + 1)
            for i, r in enumerate(rows)
            if r["channel"] == "vk" and "Жалоба" in r["text"]
            and T0 + timedelta(hours=1) <= r["received_at"] < T0 + timedelta(hours=40)
        ),
        reverse=True,
    )  # fmt: skip
    flt = q.UiAppealFilter(
        channel="vk", q="жалобы кассиру",
        since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=40),
    )  # fmt: skip
    assert len(expected) > 40
    assert walk(engine, flt) == [i for _t, i in expected]
    by_id = [i + 1 for i, r in enumerate(rows) if r["channel"] == "vk" and "Жалоба" in r["text"]]
    assert walk(engine, q.UiAppealFilter(channel="vk", q="жалоба")) == by_id[::-1]
    assert (
        walk(engine, q.UiAppealFilter(channel="vk"))
        == [i + 1 for i, r in enumerate(rows) if r["channel"] == "vk"][::-1]
    )


def test_a_search_over_months_pages_in_receive_order_window_by_window(engine: Engine) -> None:
    """Over 90 days the search reads a day, then two, four… back: the pages still come in exact
    receive order across window edges, late-polled reviews (old receive time, new id) in their
    own day, with only a start, only an end, or both."""
    rng = random.Random(9)
    rows = []
    for i in range(400):
        late = i % 17 == 0  # polled days after it was written
        days = rng.randrange(0, 30) if late else i * 90 / 400
        rows.append({
            "received_at": T0 + timedelta(days=days, minutes=rng.choice([0, 0, 7])),
            "text": "Жалоба на кассира" if i % 4 else "Благодарность продавцу",
        })  # fmt: skip
    bulk(engine, rows)

    def expect(since: datetime | None, until: datetime | None) -> list[int]:
        hits = [
            (r["received_at"], i + 1)
            for i, r in enumerate(rows)
            if "Жалоба" in r["text"]
            and (since is None or r["received_at"] >= since)
            and (until is None or r["received_at"] < until)
        ]
        return [i for _t, i in sorted(hits, reverse=True)]

    for since, until in (
        (T0, T0 + timedelta(days=91)),
        (T0 + timedelta(days=3), None),
        (None, T0 + timedelta(days=60, hours=5)),
        (T0 + timedelta(days=10), T0 + timedelta(days=10, hours=1)),  # nothing in it
    ):
        flt = q.UiAppealFilter(q="жалобы", since=since, until=until)
        assert walk(engine, flt, limit=9) == expect(since, until), (since, until)
    assert len(expect(T0, T0 + timedelta(days=91))) == 300


def test_the_search_reads_the_index(engine: Engine) -> None:
    bulk(engine, [{"text": f"обычный вопрос {i}"} for i in range(3000)] + [{"text": "редкость"}])
    sql = (
        "SELECT appeals.id FROM appeals JOIN appeals_fts ON appeals_fts.rowid = appeals.id "
        "WHERE appeals_fts MATCH '\"редкость\"' ORDER BY appeals_fts.rowid DESC LIMIT 51"
    )
    with session_scope(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(text("ANALYZE appeals"))
            sql = (
                "SELECT id FROM appeals WHERE clienthub_search_document(appeals.text, "
                "appeals.author_name, appeals.author_email, appeals.author_phone) "
                "@@ to_tsquery('simple', 'редкость') ORDER BY id DESC LIMIT 51"
            )
            plan = " ".join(str(r[0]) for r in s.execute(text("EXPLAIN " + sql)))
            assert "ix_appeals_search" in plan, plan
        else:
            plan = " ".join(str(r[-1]) for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "VIRTUAL TABLE" in plan and "TEMP B-TREE" not in plan, plan
    assert search(engine, "редкости") == [3001]


def test_downgrade_and_upgrade_keep_search_working(engine: Engine) -> None:
    bulk(engine, [{"text": "Просроченный творог"}])
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    migrations.command.downgrade(migrations.alembic_config(url), "0003")
    with engine.connect() as conn:
        names = "appeals_fts" if engine.dialect.name == "sqlite" else "ix_appeals_search"
        found = conn.execute(
            text("SELECT name FROM sqlite_master WHERE name = :n")
            if engine.dialect.name == "sqlite"
            else text("SELECT indexname FROM pg_indexes WHERE indexname = :n"),
            {"n": names},
        ).all()
        assert found == []
    migrations.upgrade(url)
    assert search(engine, "творога") == [1]
