"""ui: full-text search of appeals at a million rows; latest event per source; job counts

- SQLite: an FTS5 index ``appeals_fts`` whose external content is the view ``appeals_search``
  (text and author's name with «ё» folded, the e-mail, the author's phone as the tokens it is
  found by: 7XXXXXXXXXX and the 10-digit national number). Triggers keep it current on every
  insert, delete and change of those columns, whoever writes the row.
- PostgreSQL: a GIN index over the same document, ``to_tsvector('simple', …)`` built by the
  immutable function ``clienthub_search_document`` that the query (``hub/storage/search.py``)
  calls too. The query expands Russian words to their forms, so both databases match the same
  words the same way.
- ``raw_events (channel, source, id)``: the channels page's last event of a source is one seek;
  ``raw_events (channel, source, event_type) WHERE state = 'unsupported'``: its summary of events
  no connector knows reads only those.

A later SQLite migration that recreates ``appeals`` (batch "move and copy") drops its triggers:
it must create them again (``sqlite_triggers()`` below).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEPARATORS = (" ", "-", "(", ")", "+", ".")
CYRILLIC_UPPER = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯё"
CYRILLIC_LOWER = "абвгдеежзийклмнопрстуфхцчшщъыьэюяе"


def _digits(column: str) -> str:
    expr = f"coalesce({column}, '')"
    for ch in SEPARATORS:
        expr = f"replace({expr}, '{ch}', '')"
    return expr


def _phone(column: str) -> str:
    """The tokens a phone is found by, whatever spelling it was stored in."""
    d = _digits(column)
    return (
        f"CASE WHEN length({d}) = 11 AND substr({d}, 1, 1) IN ('7', '8') "
        f"THEN '7' || substr({d}, 2) || ' ' || substr({d}, 2) "
        f"WHEN length({d}) = 10 THEN '7' || {d} || ' ' || {d} ELSE {d} END"
    )


def _yo(column: str) -> str:
    return f"replace(replace(coalesce({column}, ''), 'ё', 'е'), 'Ё', 'Е')"


SQLITE_VIEW = f"""
CREATE VIEW appeals_search AS SELECT id, {_yo("text")} AS text, {_yo("author_name")} AS author,
    coalesce(author_email, '') AS email, {_phone("author_phone")} AS phone FROM appeals
"""
SQLITE_FTS = """
CREATE VIRTUAL TABLE appeals_fts USING fts5(
    text, author, email, phone, content='appeals_search', content_rowid='id',
    tokenize='unicode61 remove_diacritics 0', detail='none'
)
"""
_FTS_COLUMNS = "rowid, text, author, email, phone"
_VIEW_ROW = "SELECT id, text, author, email, phone FROM appeals_search WHERE id ="
_WATCHED = "text, author_name, author_email, author_phone"


def sqlite_triggers() -> list[str]:
    return [
        f"""CREATE TRIGGER appeals_fts_ai AFTER INSERT ON appeals BEGIN
            INSERT INTO appeals_fts({_FTS_COLUMNS}) {_VIEW_ROW} new.id; END""",
        f"""CREATE TRIGGER appeals_fts_bd BEFORE DELETE ON appeals BEGIN
            INSERT INTO appeals_fts(appeals_fts, {_FTS_COLUMNS})
            SELECT 'delete', id, text, author, email, phone FROM appeals_search
            WHERE id = old.id; END""",
        f"""CREATE TRIGGER appeals_fts_bu BEFORE UPDATE OF {_WATCHED} ON appeals BEGIN
            INSERT INTO appeals_fts(appeals_fts, {_FTS_COLUMNS})
            SELECT 'delete', id, text, author, email, phone FROM appeals_search
            WHERE id = old.id; END""",
        f"""CREATE TRIGGER appeals_fts_au AFTER UPDATE OF {_WATCHED} ON appeals BEGIN
            INSERT INTO appeals_fts({_FTS_COLUMNS}) {_VIEW_ROW} new.id; END""",
    ]


def _pg_words(column: str) -> str:
    """Cyrillic folded without the server's locale; separators as spaces, as FTS5 splits."""
    return (
        f"translate(coalesce({column}, ''), '{CYRILLIC_UPPER}@._-+/:', "
        f"'{CYRILLIC_LOWER}       ')"
    )


# The indexed document is a function, so that the query (hub/storage/search.py) names it the
# same way as the index and the planner finds the index.
PG_FUNCTIONS = [
    f"""CREATE FUNCTION clienthub_phone_tokens(phone text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN length(d) = 11 AND substr(d, 1, 1) IN ('7', '8')
                    THEN '7' || substr(d, 2) || ' ' || substr(d, 2)
                    WHEN length(d) = 10 THEN '7' || d || ' ' || d ELSE d END
        FROM (SELECT {_digits("phone")} AS d) AS digits $$""",
    f"""CREATE FUNCTION clienthub_search_document(
            body text, author text, email text, phone text) RETURNS tsvector
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT to_tsvector('simple'::regconfig, {_pg_words("body")} || ' ' || {_pg_words("author")}
            || ' ' || {_pg_words("email")} || ' ' || clienthub_phone_tokens(phone)) $$""",
]
PG_INDEX = """CREATE INDEX ix_appeals_search ON appeals USING gin
    (clienthub_search_document(text, author_name, author_email, author_phone))"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*PG_FUNCTIONS, PG_INDEX):
            op.execute(statement)
    else:
        op.execute(SQLITE_VIEW)
        op.execute(SQLITE_FTS)
        for trigger in sqlite_triggers():
            op.execute(trigger)
        op.execute("INSERT INTO appeals_fts(appeals_fts) VALUES ('rebuild')")
    with op.batch_alter_table("raw_events", schema=None) as batch_op:
        batch_op.create_index("ix_raw_events_source_id", ["channel", "source", "id"], unique=False)
        batch_op.create_index(
            "ix_raw_events_unsupported",
            ["channel", "source", "event_type"],
            unique=False,
            sqlite_where=sa.text("state = 'unsupported'"),
            postgresql_where=sa.text("state = 'unsupported'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("raw_events", schema=None) as batch_op:
        batch_op.drop_index("ix_raw_events_unsupported")
        batch_op.drop_index("ix_raw_events_source_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_appeals_search")
        op.execute("DROP FUNCTION IF EXISTS clienthub_search_document(text, text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS clienthub_phone_tokens(text)")
        return
    for name in ("appeals_fts_ai", "appeals_fts_bd", "appeals_fts_bu", "appeals_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS appeals_fts")
    op.execute("DROP VIEW IF EXISTS appeals_search")
