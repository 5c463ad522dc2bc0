"""Scheduler leadership across real worker processes: kill the leader, another takes over within
one election tick, and the pollers it runs neither stop nor run twice.

The poller watched is Telegram ``getUpdates`` against a fake Bot API that records every call with
its start and end. Telegram itself refuses a second concurrent ``getUpdates`` (409 "terminated by
other getUpdates request"); the fake records overlap instead, so two leaders show as overlapping
calls.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.fakes.serve import serve
from hub.models import RawEvent
from hub.storage import sources as sources_store
from tests.reliability.cluster import Cluster, wait_until

TOKEN = "777:leader-test"
ELECTION_SECONDS = 5.0  # hub/scheduler.py Scheduler(election_seconds=5.0), as `clienthub worker`
HOLD = 0.3  # how long the fake holds a long poll


@dataclass
class PollLog:
    calls: list[tuple[float, float, int]] = field(default_factory=list)  # start, end, offset
    updates: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot{token}/getUpdates")
        async def get_updates(token: str, request: Request) -> JSONResponse:
            payload = await request.json()
            offset = int(payload.get("offset") or 0)
            started = time.monotonic()
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                await asyncio.sleep(HOLD)
            finally:
                self.active -= 1
            self.calls.append((started, time.monotonic(), offset))
            pending = [u for u in self.updates if u["update_id"] >= offset]
            return JSONResponse({"ok": True, "result": pending[:100]})

        return app

    def add(self, n: int) -> None:
        self.updates.append(
            {
                "update_id": 1000 + n,
                "message": {
                    "message_id": n,
                    "date": int(time.time()),
                    "chat": {"id": 4242, "type": "private", "first_name": "Олег"},
                    "from": {"id": 4242, "is_bot": False, "first_name": "Олег"},
                    "text": f"Сообщение {n}",
                },
            }
        )


def _leader(cluster: Cluster) -> str | None:
    """The worker whose latest log line about leadership says it leads."""
    for proc in cluster.workers:
        if proc.alive and re.search(r"became scheduler leader", proc.log_text()):
            return proc.name
    return None


def _stored(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(
            s.execute(
                select(func.count()).select_from(RawEvent).where(RawEvent.channel == "telegram")
            ).scalar_one()
        )


@pytest.mark.slow
@pytest.mark.pg
def test_killed_leader_is_replaced_and_the_poller_never_runs_twice(
    cluster: Cluster, cluster_engine: Engine
) -> None:
    log = PollLog()
    with serve(log.app()) as api:
        with session_scope(cluster_engine) as s:
            sources_store.upsert(
                s, channel="telegram", source="polled",
                config={"api_url": api, "intake": "polling", "poll_timeout": 1},
                secrets={"token": TOKEN},
            )  # fmt: skip
        cluster.start(webs=0, workers=3)
        wait_until(lambda: _leader(cluster) is not None, timeout=30, what="a leader")
        first = _leader(cluster)
        assert first is not None
        for n in range(5):
            log.add(n)
        wait_until(lambda: _stored(cluster_engine) == 5, timeout=30, what="the first updates")

        killed_at = time.monotonic()
        cluster.kill(first, signal.SIGKILL)
        for n in range(5, 10):  # customers keep writing while nobody leads
            log.add(n)
        wait_until(lambda: _leader(cluster) is not None, timeout=30, what="a new leader")
        wait_until(lambda: _stored(cluster_engine) == 10, timeout=30, what="updates after failover")
        second = _leader(cluster)
        time.sleep(3)  # a few more polls under the new leader

    assert second is not None and second != first
    after = [c for c in log.calls if c[0] > killed_at]
    takeover = after[0][0] - killed_at
    # Within one election tick plus the poller's first interval (1 s), with scheduling slack.
    assert takeover < ELECTION_SECONDS + 3, f"takeover took {takeover:.1f} s"
    assert log.max_active == 1, "two processes polled at the same time"
    starts = sorted(c[0] for c in log.calls)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    steady = [g for a, g in zip(starts, gaps, strict=False) if not (a < killed_at + takeover)]
    assert max(steady) < 3.0, "the poller stalled under a healthy leader"
    assert _stored(cluster_engine) == 10  # none lost, none twice (unique on update_id)
    print(
        f"leader {first} killed; {second} polled {takeover:.1f} s later; "
        f"{len(log.calls)} polls, max concurrent {log.max_active}"
    )
