"""Shared by the reaction-time tests: a simulated clock, routing at a given moment, and a worker
whose escalation handlers read that clock and talk to a sandbox portal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub import escalation, queue
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.jobs import KIND as DELIVER_JOB
from hub.bitrix24.jobs import make_handler
from hub.db import session_scope
from hub.jobs import job_handlers
from hub.models import Appeal, AppealState, DeliveryState, Job
from hub.pipeline import appeal_input
from hub.routing import service as routing
from hub.rules_io import read_dir
from hub.settings import get_settings
from hub.storage import appeals as appeals_store
from hub.storage import rulesets
from hub.timeutil import as_utc
from hub.worker import Worker


@dataclass
class SimClock:
    """ "Now" for the sweeps and the escalation handlers; moved by the test, never slept."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def publish(engine: Engine, files: dict[str, str]) -> int:
    with session_scope(engine) as s:
        draft = rulesets.import_draft(session=s, files=files, created_by="test")
        version = rulesets.publish(session=s, published_by="test", version_id=draft.id)
        assert version.id is not None
        return version.id


def publish_dir(engine: Engine, path: Any) -> int:
    return publish(engine, read_dir(path))


def route_at(
    engine: Engine,
    text: str,
    at: datetime,
    *,
    deliver: bool = True,
    channel: str = "vk",
    source: str = "club-reaction",
) -> int:
    """Store an appeal received at ``at`` and route it as the pipeline does at that moment
    (on-duty checks included), queueing its delivery."""
    with session_scope(engine) as s:
        appeal = Appeal(
            channel=channel,
            source=source,
            kind="message",
            text=text,
            received_at=at,
            state=AppealState.new.value,
        )
        s.add(appeal)
        s.flush()
        assert appeal.id is not None
        decision = routing.route(s, appeal_input(appeal), now=at)
        appeals_store.apply_decision(appeal, decision)
        if deliver:
            appeal.delivery_state = DeliveryState.pending.value
            key = f"appeal:{appeal.id}"
            queue.enqueue(s, DELIVER_JOB, key, {"appeal_id": appeal.id}, appeal_id=appeal.id)
        s.add(appeal)
        return appeal.id


def worker(engine: Engine, clock: SimClock, client: Bitrix24Client | None) -> Worker:
    """Every real handler; delivery and escalation talk to ``client`` (None: no portal)."""
    settings = get_settings().model_copy(
        update={"public_url": "https://hub.example", "job_poll_seconds": 0.01}
    )
    handlers = dict(job_handlers())
    if client is not None:
        handlers[DELIVER_JOB] = make_handler(lambda _e: client, settings)
    for h in escalation.make_handlers(lambda _e: client, clock, "https://hub.example"):
        handlers[h.kind] = h
    return Worker(engine, settings=settings, handlers=handlers)


def get(engine: Engine, appeal_id: int) -> Appeal:
    with session_scope(engine, read_only=True) as s:
        appeal = s.get(Appeal, appeal_id)
        assert appeal is not None
        return appeal


def jobs(engine: Engine, kind: str, appeal_id: int | None = None) -> list[Job]:
    with session_scope(engine, read_only=True) as s:
        q = select(Job).where(Job.kind == kind).order_by(Job.id)
        if appeal_id is not None:
            q = q.where(Job.appeal_id == appeal_id)
        return list(s.execute(q).scalars())


def trace_of(engine: Engine, appeal_id: int, step: str) -> list[dict[str, Any]]:
    return [t for t in get(engine, appeal_id).trace if t["step"] == step]


def due(engine: Engine, appeal_id: int) -> datetime:
    moment = get(engine, appeal_id).reply_due_at
    assert moment is not None
    return as_utc(moment)
