"""ClientHub's side of the telephony tests: configure a PBX source, read appeals and calls, run
the jobs until a condition holds, serve ClientHub's app. The PBXs themselves are hub/fakes/pbx.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Appeal, TelephonyCall
from hub.storage import sources as sources_store
from hub.worker import Worker


def source(engine: Engine, channel: str, name: str, config: dict, secrets: dict) -> None:
    with session_scope(engine) as s:
        sources_store.upsert(s, channel=channel, source=name, config=config, secrets=secrets)


def appeals(engine: Engine) -> list[Appeal]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(Appeal).order_by(Appeal.id)).scalars())


def calls_of(engine: Engine) -> list[TelephonyCall]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(TelephonyCall).order_by(TelephonyCall.id)).scalars())


def drain_until(engine: Engine, done: Any, *, timeout: float = 30.0, handlers: Any = None) -> None:
    """Run due jobs until ``done()``; retried jobs come due after their (short) backoff."""
    from hub.settings import get_settings

    worker = Worker(engine, settings=get_settings(), handlers=handlers)
    deadline = time.monotonic() + timeout
    while True:
        worker.run_until_idle()
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the jobs did not get there in time")
        time.sleep(0.02)


@contextmanager
def hub_server(engine: Engine) -> Iterator[str]:
    """ClientHub's app with the telephony routes, on a loopback port."""
    from hub.bootstrap import ensure_defaults
    from hub.http.app import create_app
    from hub.settings import get_settings
    from hub.telephony_http import router
    from tests.conftest import LiveServer

    get_settings.cache_clear()
    settings = get_settings()
    ensure_defaults(engine, settings)
    app = create_app(settings, engine)
    if not any(getattr(r, "path", "") == "/telephony/recordings/{sha}/{name}" for r in app.routes):
        app.include_router(router)
    with LiveServer(app) as server:
        yield server.url
