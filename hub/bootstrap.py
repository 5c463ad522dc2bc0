"""First-start defaults, so that a fresh install shows real work with nothing configured: the
site form source, the sample rule directory, and (outside production) a first admin user."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.db import session_scope
from hub.rules_io import read_dir
from hub.settings import Settings
from hub.storage import rulesets
from hub.storage import sources as sources_store
from hub.storage import users as users_store

log = logging.getLogger("clienthub.bootstrap")


# pg_advisory_xact_lock key of the first-start defaults (other keys: hub/storage/rulesets.py,
# hub/scheduler.py); held to the end of the transaction that checks and creates.
_BOOTSTRAP_LOCK = 7_402_120


def _first_start_lock(session: Session) -> None:
    """Serialise first starts: compose starts two web processes and three workers at once on an
    empty database, and each would see no sources and no rule versions and create its own. On
    PostgreSQL a transaction-scoped advisory lock makes the others wait and then see the first
    one's rows (READ COMMITTED); SQLite writing transactions already begin IMMEDIATE
    (hub/db.py), which serialises the check and the write the same way."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK})


def ensure_defaults(
    engine: Engine, settings: Settings, say: Callable[[str], None] | None = None
) -> None:
    """First start: the initial sources (default ``form/site``) and the sample rule directory
    published as version 1, so that a fresh install routes for real. Later starts change nothing;
    processes starting together create everything once. ``say`` hears what takes a moment."""
    with session_scope(engine) as s:
        _first_start_lock(s)
        if not sources_store.list_all(s):
            for spec in settings.initial_sources:
                channel, _, source = spec.partition("/")
                if channel and source:
                    sources_store.upsert(
                        s, channel=channel, source=source, title=f"{channel}/{source}"
                    )
                    log.info("created default source %s/%s", channel, source)
    rules_dir = Path(settings.initial_rules_dir) if settings.initial_rules_dir else None
    if rules_dir is None or not rules_dir.is_dir():
        return
    with session_scope(engine, read_only=True) as s:
        if rulesets.count_versions(s):  # every later start: no lock, no file reading
            return
    files = read_dir(rules_dir)
    with session_scope(engine) as s:
        _first_start_lock(s)
        if rulesets.count_versions(s):  # another process published while this one waited
            return
        started = time.monotonic()
        if say:
            say(
                f"первый запуск / first start: публикую правила / publishing rules {rules_dir} "
                f"({len(files)} файлов / files)…"
            )
        version = rulesets.import_draft(
            session=s,
            files=files,
            created_by="system",
            note=f"first start: {rules_dir.name}",
        )
        rulesets.publish(session=s, published_by="system", version_id=version.id)
        number = version.id
    log.info("published rule directory %s as version %s", rules_dir, number)
    if say:
        seconds = time.monotonic() - started
        say(f"  опубликована версия / published version {number} ({seconds:.1f} с / s)")


FIRST_ADMIN_LOGIN = "admin"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a terminal and typed


@dataclass(frozen=True)
class FirstAdmin:
    """What the start-up banner can say about UI users. ``password`` is set only when this
    process generated it: it is shown once, since the database keeps only its argon2 hash."""

    created: bool = False
    password: str | None = None
    from_env: bool = False  # the password came from CLIENTHUB_FIRST_ADMIN_PASSWORD
    raced: bool = False  # another process created the admin at the same moment
    users: int = 0  # users there were before this start


class FirstAdminError(ValueError):
    """CLIENTHUB_FIRST_ADMIN_PASSWORD is unusable: refuse to start rather than guess."""


def new_password() -> str:
    """Four groups of five: about 99 bits, easy to copy from a terminal and to type."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(20))
    return "-".join(chars[i : i + 5] for i in range(0, 20, 5))


def ensure_first_admin(engine: Engine, settings: Settings) -> FirstAdmin:
    """First start with no UI users and ``CLIENTHUB_FIRST_ADMIN=auto``: create ``admin`` so that
    a newcomer can log in at once. Several web processes may start together on PostgreSQL: the
    unique login decides, the losers report ``raced`` and create nothing."""
    from hub.storage.ui_queries import add_audit
    from hub.ui.security import hash_password
    from hub.ui.users import password_problem

    with session_scope(engine, read_only=True) as s:
        existing = users_store.count(s)
    if existing or settings.first_admin != "auto":
        return FirstAdmin(users=existing)
    given = settings.first_admin_password.get_secret_value()
    if given and (problem := password_problem(given)):
        raise FirstAdminError(f"CLIENTHUB_FIRST_ADMIN_PASSWORD: {problem}")
    password = given or new_password()
    digest = hash_password(password)  # before the write transaction: argon2 takes a while
    try:
        with session_scope(engine) as s:
            users_store.create(
                s, login=FIRST_ADMIN_LOGIN, name="Администратор", role="admin",
                password_hash=digest,
            )  # fmt: skip
            add_audit(
                s, actor="system", action="user.add", object_type="user",
                object_id=FIRST_ADMIN_LOGIN,
                details={"after": {"login": FIRST_ADMIN_LOGIN, "role": "admin"},
                         "reason": "first start", "password_from_env": bool(given)},
            )  # fmt: skip
    except (IntegrityError, users_store.UserExists):
        log.info("the first admin was created by another process")
        return FirstAdmin(raced=True)
    log.info("created the first admin user %s", FIRST_ADMIN_LOGIN)
    return FirstAdmin(created=True, password=None if given else password, from_env=bool(given))
