"""Small helpers shared by tests."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
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


def api_headers(engine: Engine, role: str = "admin") -> dict[str, str]:
    """A bearer token for the JSON API, as `clienthub users token` issues (a user per role)."""
    import secrets
    from datetime import timedelta

    from hub.storage import users as users_store
    from hub.timeutil import utcnow
    from hub.ui.security import hash_password, new_token

    value, digest = new_token()
    login = f"api-{role}"
    with session_scope(engine) as s:
        user = users_store.get_by_login(s, login) or users_store.create(
            s, login=login, role=role, password_hash=hash_password(secrets.token_urlsafe(12))
        )
        users_store.open_session(
            s, user=user, token_hash=digest, csrf_token=secrets.token_urlsafe(16),
            expires_at=utcnow() + timedelta(hours=1), ip="api-token",
        )  # fmt: skip
    return {"Authorization": f"Bearer {value}"}


@contextmanager
def small_disk(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` at ``path`` (the recordings directory), filled to the brim: the
    real ENOSPC of a full disk, not a mocked write. Needs root (as CI runs) or sudo."""
    path.mkdir(parents=True, exist_ok=True)
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and not shutil.which("sudo"):
        pytest.skip("mounting a small tmpfs needs root or sudo")
    mount = [*prefix, "mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0777", "tmpfs"]
    done = subprocess.run([*mount, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    filler = path / "filler"
    try:
        with filler.open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield filler
    finally:
        subprocess.run([*prefix, "umount", "-l", str(path)], check=False)
