"""Worker processes: killed with SIGKILL mid-job, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import select

from hub.db import session_scope
from hub.ingest import IngestWriter
from hub.jobs import JobContext, JobHandler
from hub.models import Appeal, AuditEntry, Job, JobState
from hub.settings import get_settings
from hub.storage import sources as sources_store
from hub.storage.raw_events import IncomingEvent
from hub.worker import Worker
from tests.helpers import count, drain

FORM = "name=Иван&phone=89161234567&message=Здравствуйте".encode()


def _worker_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.startswith("CLIENTHUB_") or k in {"PATH", "HOME"}
    }
    env.update(CLIENTHUB_DATABASE_URL=db_url, CLIENTHUB_LOG_JSON="true", **extra)
    return env


def _store_form(engine) -> int:
    with session_scope(engine) as s:
        sources_store.upsert(s, channel="form", source="site")
    stored = IngestWriter(engine).store_sync(
        IncomingEvent(
            channel="form",
            source="site",
            external_id="crash-1",
            event_type="form",
            headers={},
            content_type="application/x-www-form-urlencoded",
            body=FORM,
        )
    )
    return stored.raw_event_id


def test_worker_killed_after_the_effect_before_commit_completes_exactly_once(engine, env):
    _store_form(engine)
    proc = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
        env=_worker_env(
            env,
            CLIENTHUB_FAULT_KILL_AT="parse.event:after_handler",
            CLIENTHUB_JOB_LEASE_SECONDS="1",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # The process died holding the job: nothing it did is visible.
    with session_scope(engine, read_only=True) as s:
        job = s.execute(select(Job).where(Job.kind == "parse.event")).scalar_one()
    assert job.state == JobState.running
    assert job.attempts == 1
    assert count(engine, Appeal) == 0

    time.sleep(1.2)  # the lease runs out; the next worker takes the job again
    drain(engine)
    with session_scope(engine, read_only=True) as s:
        job = s.execute(select(Job).where(Job.kind == "parse.event")).scalar_one()
    assert job.state == JobState.done
    assert job.attempts == 2
    assert count(engine, Appeal) == 1


def test_sigterm_stops_an_idle_worker_cleanly(engine, env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
        env=_worker_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "worker started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_stop_during_a_job_finishes_that_job_first(engine):
    entered = threading.Event()

    def slow(ctx: JobContext) -> None:
        entered.set()
        time.sleep(0.5)
        ctx.session.add(AuditEntry(actor="w", action="effect", object_type="job"))

    from hub import queue

    with session_scope(engine) as s:
        queue.enqueue(s, "test.slow", "one", {})
    worker = Worker(
        engine, settings=get_settings(), handlers={"test.slow": JobHandler("test.slow", slow)}
    )
    t = threading.Thread(target=worker.run_forever)
    t.start()
    assert entered.wait(10)
    worker.stop()
    t.join(10)
    assert not t.is_alive()
    assert count(engine, AuditEntry) == 1
    assert count(engine, Job, Job.state == JobState.done) == 1
