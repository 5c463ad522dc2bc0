"""The job queue and worker on a real database: claims, leases, backoff, dead letters."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub import queue
from hub.db import session_scope
from hub.jobs import BACKGROUND, JobContext, JobHandler, PermanentJobError
from hub.models import AuditEntry, Job, JobState
from hub.settings import get_settings
from hub.timeutil import utcnow
from hub.worker import Worker


def _job(engine, key="k1"):
    with session_scope(engine, read_only=True) as s:
        return s.execute(select(Job).where(Job.key == key)).scalar_one()


def _enqueue(engine, kind="test.echo", key="k1", payload=None):
    with session_scope(engine) as s:
        return queue.enqueue(s, kind, key, payload or {"n": 1})


def _worker(engine, handlers, **kw):
    return Worker(engine, settings=get_settings(), handlers={h.kind: h for h in handlers}, **kw)


class TestEnqueue:
    def test_same_kind_and_key_is_one_job(self, engine):
        assert _enqueue(engine) is True
        assert _enqueue(engine) is False
        with session_scope(engine, read_only=True) as s:
            assert len(s.execute(select(Job)).scalars().all()) == 1


class TestWorker:
    def test_effect_and_completion_commit_together(self, engine):
        def run(ctx: JobContext) -> None:
            ctx.session.add(AuditEntry(actor="t", action="echo", object_type="job"))

        _enqueue(engine)
        assert _worker(engine, [JobHandler("test.echo", run)]).run_until_idle() == 1
        assert _job(engine).state == JobState.done
        with session_scope(engine, read_only=True) as s:
            assert len(s.execute(select(AuditEntry)).scalars().all()) == 1

    def test_failure_rolls_back_the_effect_and_backs_off(self, engine):
        def run(ctx: JobContext) -> None:
            ctx.session.add(AuditEntry(actor="t", action="echo", object_type="job"))
            ctx.session.flush()
            raise RuntimeError("portal down")

        _enqueue(engine)
        _worker(engine, [JobHandler("test.echo", run)]).run_once()
        job = _job(engine)
        assert job.state == JobState.queued
        assert job.attempts == 1
        assert "portal down" in (job.last_error or "")
        assert job.started_at is not None
        assert job.run_at > job.started_at  # backed off, not re-run at once
        with session_scope(engine, read_only=True) as s:
            assert s.execute(select(AuditEntry)).first() is None

    def test_permanent_error_goes_dead_at_once_and_retry_revives_it(self, engine):
        calls: list[int] = []

        def run(ctx: JobContext) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise PermanentJobError("bad data")

        _enqueue(engine)
        worker = _worker(engine, [JobHandler("test.echo", run)])
        worker.run_once()
        assert _job(engine).state == JobState.dead
        with session_scope(engine) as s:
            assert queue.retry(s, job_ids=[_job(engine).id]) == 1
        worker.run_until_idle()
        assert _job(engine).state == JobState.done
        assert len(calls) == 2

    def test_one_failed_job_of_a_batch_does_not_fail_the_others(self, engine):
        def run(ctx: JobContext) -> None:
            for job in ctx.jobs:
                if job.payload["n"] == 2:
                    ctx.fail(job, "only this one", retry=False)

        for n in (1, 2, 3):
            _enqueue(engine, key=f"k{n}", payload={"n": n})
        _worker(engine, [JobHandler("test.echo", run, batch_size=10)]).run_once()
        states = {n: _job(engine, f"k{n}").state for n in (1, 2, 3)}
        assert states == {1: JobState.done, 2: JobState.dead, 3: JobState.done}

    def test_expired_lease_is_taken_again_and_the_old_holder_cannot_commit(self, engine):
        """A worker that lost its lease must not commit: its effects roll back (no double run)."""
        entered = threading.Event()
        release = threading.Event()
        runs: list[str] = []

        def slow(ctx: JobContext) -> None:
            runs.append(ctx.worker_id)
            if len(runs) == 1:
                entered.set()
                release.wait(10)
            ctx.session.add(AuditEntry(actor=ctx.worker_id, action="effect", object_type="job"))

        _enqueue(engine)
        first = _worker(engine, [JobHandler("test.echo", slow)], worker_id="first")
        t = threading.Thread(target=first.run_once)
        t.start()
        assert entered.wait(10)
        with session_scope(engine) as s:  # the lease runs out (as if the heartbeat stopped)
            s.execute(update(Job).values(locked_until=utcnow() - timedelta(seconds=1)))
        second = _worker(engine, [JobHandler("test.echo", slow)], worker_id="second")
        assert second.run_once() is True
        release.set()
        t.join(10)
        with session_scope(engine, read_only=True) as s:
            actors = [a.actor for a in s.execute(select(AuditEntry)).scalars()]
        assert actors == ["second"]
        assert _job(engine).state == JobState.done


class TestPriority:
    def test_due_foreground_jobs_go_before_older_background_ones(self, engine):
        """Thousands of escalation notices due since long ago must not hold back a delivery
        that is due now; every ``background_share``-th round still lets one of them through."""
        ran: list[str] = []

        def run(ctx: JobContext) -> None:
            ran.extend(j.kind for j in ctx.jobs)

        old = utcnow() - timedelta(hours=1)
        with session_scope(engine) as s:
            for n in range(6):
                queue.enqueue(s, "test.notice", f"n{n}", {}, run_at=old)
            for n in range(8):
                queue.enqueue(s, "test.deliver", f"d{n}", {})
        handlers = [
            JobHandler("test.notice", run, priority=BACKGROUND),
            JobHandler("test.deliver", run),
        ]
        worker = _worker(engine, handlers)
        assert worker.settings.background_share == 5
        worker.run_until_idle()
        # Rounds 5 and 10 offer the background tier first; the rest go to deliveries while due.
        assert ran[:10] == ["test.deliver"] * 4 + ["test.notice"] + ["test.deliver"] * 4 + [
            "test.notice"
        ]
        assert ran[10:] == ["test.notice"] * 4  # then the rest of the background, in order
        assert sorted(ran) == sorted(["test.deliver"] * 8 + ["test.notice"] * 6)

    def test_background_runs_at_once_when_nothing_else_is_due(self, engine):
        ran: list[str] = []
        with session_scope(engine) as s:
            queue.enqueue(s, "test.notice", "n1", {})
            queue.enqueue(s, "test.deliver", "later", {}, run_at=utcnow() + timedelta(hours=1))
        handlers = [
            JobHandler("test.notice", lambda ctx: ran.append("notice"), priority=BACKGROUND),
            JobHandler("test.deliver", lambda ctx: ran.append("deliver")),
        ]
        assert _worker(engine, handlers).run_until_idle() == 1
        assert ran == ["notice"]

    def test_escalations_and_status_reports_are_background(self):
        from hub.jobs import job_handlers

        handlers = job_handlers()
        background = sorted(k for k, h in handlers.items() if h.priority == BACKGROUND)
        assert background == ["escalate.appeal", "reassign.absent", "reply.report"]
        assert handlers["deliver.appeal"].priority < BACKGROUND
        assert handlers["parse.event"].priority < BACKGROUND


class TestRetryPolicy:
    def test_backoff_grows_with_jitter_and_stops_at_the_horizon(self):
        policy = queue.RetryPolicy(
            base_seconds=2, max_delay_seconds=600, horizon=timedelta(hours=1)
        )
        now = utcnow()
        job = Job(kind="k", key="k", created_at=now)
        rng = random.Random(1)
        delays = []
        for attempt in range(1, 8):
            job.attempts = attempt
            when = policy.next_run(job, now, rng)
            assert when is not None
            delays.append((when - now).total_seconds())
        for attempt, delay in enumerate(delays, start=1):
            base = min(600, 2 * 2 ** (attempt - 1))
            assert 0.5 * base <= delay <= 1.5 * base
        job.attempts = 20
        assert policy.next_run(job, now + timedelta(minutes=59), rng) is None


@pytest.mark.parametrize("workers", [3])
def test_concurrent_workers_claim_each_job_once(engine, workers):
    done: list[int] = []
    lock = threading.Lock()

    def run(ctx: JobContext) -> None:
        with lock:
            done.extend(j.payload["n"] for j in ctx.jobs)

    for n in range(120):
        _enqueue(engine, key=f"k{n}", payload={"n": n})
    handler = JobHandler("test.echo", run, batch_size=5)
    threads = [
        threading.Thread(target=_worker(engine, [handler]).run_until_idle) for _ in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(done) == list(range(120))
    with session_scope(engine, read_only=True) as s:
        states = {j.state for j in s.execute(select(Job)).scalars()}
    assert states == {JobState.done}
