"""Small helpers shared by tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from hub.db import session_scope
from hub.settings import get_settings
from hub.worker import Worker


def count(engine: Engine, model: type[SQLModel], *where: object) -> int:
    with session_scope(engine, read_only=True) as s:
        q = select(func.count()).select_from(model)
        for w in where:
            q = q.where(w)  # type: ignore[arg-type]
        return int(s.execute(q).scalar_one())


def drain(engine: Engine) -> int:
    """Run every due job with a real worker until the queue is idle."""
    return Worker(engine, settings=get_settings()).run_until_idle()
