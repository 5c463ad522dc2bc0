"""Exactly once under a killed worker and under concurrent workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from hub.db import session_scope
from hub.models import DeliveryState, Job, JobState
from tests.bitrix24.conftest import add_appeal, get_appeal, worker_for


def _worker_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.startswith("CLIENTHUB_") or k in {"PATH", "HOME"}
    }
    env.update(CLIENTHUB_DATABASE_URL=db_url, CLIENTHUB_LOG_JSON="true", **extra)
    return env


def _job_states(engine) -> set[str]:
    with session_scope(engine, read_only=True) as s:
        return {j.state for j in s.execute(select(Job)).scalars()}


@pytest.mark.parametrize("point", ["after_batch", "after_handler"])
def test_sigkill_between_batch_and_commit_creates_no_duplicate(engine, env, sandbox, client, point):
    """after_batch: the portal ran the batch, nothing reached the outbox (lookups must find it);
    after_handler: the outbox has it, the appeals and the jobs were not committed."""
    ids = [
        add_appeal(engine, author_phone=f"+7916500{i:04d}", thread_key=f"t{i % 2}")
        for i in range(5)
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
        env=_worker_env(
            env,
            CLIENTHUB_FAULT_KILL_AT=f"deliver.appeal:{point}",
            CLIENTHUB_JOB_LEASE_SECONDS="1",
            CLIENTHUB_B24_WEBHOOK_URL=sandbox.webhook_url,
            CLIENTHUB_PUBLIC_URL="https://hub.example",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    created = sandbox.state()
    assert (created["deals"], created["contacts"], created["comments"]) == (2, 5, 5)
    assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.pending}
    assert _job_states(engine) == {JobState.running}

    time.sleep(1.2)  # the dead worker's lease runs out
    worker_for(engine, client).run_until_idle()
    after = sandbox.state()
    assert (after["deals"], after["contacts"], after["comments"]) == (2, 5, 5)
    assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.delivered}
    assert _job_states(engine) == {JobState.done}
    adds = [
        c for c in sandbox.calls() if c["method"] in ("crm.item.add", "crm.timeline.comment.add")
    ]
    assert len(adds) == 12  # 5 contacts, 2 deals, 5 comments: all from the killed worker
    if point == "after_batch":
        assert sandbox.calls(method="crm.item.list"), "the retry looked the deals up"


def test_three_workers_deliver_each_thread_and_person_once(engine, sandbox, client):
    ids = [
        add_appeal(engine, author_phone=f"+7916400000{i % 4}", thread_key=f"t{i % 5}")
        for i in range(30)
    ]
    workers = [
        worker_for(engine, client, b24_deliver_claim=3, retry_base_seconds=0.001) for _ in range(3)
    ]

    def drain(worker) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _job_states(engine) - {JobState.done}:
            if not worker.run_once():
                time.sleep(0.005)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = sandbox.state()
    assert (state["deals"], state["contacts"], state["comments"]) == (5, 4, 30)
    assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.delivered}
    deal_of = {}
    for i in ids:
        appeal = get_appeal(engine, i)
        deal_of.setdefault(appeal.thread_key, set()).add(appeal.crm_entity_id)
    assert all(len(v) == 1 for v in deal_of.values())
