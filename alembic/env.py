"""Alembic environment: the URL comes from ClientHub's settings, or from the caller's config."""

from __future__ import annotations

from sqlmodel import SQLModel

import hub.models  # noqa: F401  (registers every table on SQLModel.metadata)
from alembic import context
from hub.db import make_engine
from hub.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


# Kept up by migration 0004, not by the models: autogenerate must neither drop nor recreate them.
_NOT_MODELLED = ("appeals_fts", "appeals_search", "ix_appeals_search")


def _include(_obj: object, name: str | None, _type: str, _reflected: bool, _to: object) -> bool:
    return not (name or "").startswith(_NOT_MODELLED)


def _url() -> str:
    return config.attributes.get("url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
