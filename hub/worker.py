"""The claim-run-record loop. Several workers (threads or processes) may share one database."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.engine import Engine

from hub import metrics, queue
from hub.db import session_scope
from hub.jobs import JobContext, JobHandler, PermanentJobError, crash_at, job_handlers
from hub.logging import bind_context
from hub.models import Job
from hub.settings import Settings, get_settings
from hub.timeutil import as_utc, utcnow

log = logging.getLogger("clienthub.worker")


def new_worker_id(prefix: str = "w") -> str:
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        handlers: Mapping[str, JobHandler] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.handlers = dict(handlers if handlers is not None else job_handlers())
        self.worker_id = worker_id or new_worker_id()
        self.policy = queue.RetryPolicy(
            base_seconds=self.settings.retry_base_seconds,
            max_delay_seconds=self.settings.retry_max_delay_seconds,
            horizon=timedelta(hours=self.settings.retry_horizon_hours),
        )
        # Kinds by priority, most urgent first (hub/jobs.py: FOREGROUND, BACKGROUND).
        tiers: dict[int, list[str]] = {}
        for kind, handler in self.handlers.items():
            tiers.setdefault(handler.priority, []).append(kind)
        self._tiers = [tiers[p] for p in sorted(tiers)]
        self._rounds = 0
        self._stop = threading.Event()
        self._held: list[int] = []
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        log.info("worker started", extra={"worker_id": self.worker_id})
        self._heartbeat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._heartbeat.start()
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # the loop must survive a database hiccup
                log.exception("worker loop error")
                worked = False
            if not worked:
                self._stop.wait(self.settings.job_poll_seconds)
        log.info("worker stopped (current job finished)", extra={"worker_id": self.worker_id})

    def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Run due jobs until none is left (tests, `jobs run`); returns how many batches ran."""
        rounds = 0
        while rounds < max_rounds and self.run_once():
            rounds += 1
        return rounds

    def _beat(self) -> None:
        interval = max(0.5, self.settings.job_lease_seconds / 3)
        while not self._stop.wait(interval):
            with self._held_lock:
                held = list(self._held)
            if not held:
                continue
            try:
                with session_scope(self.engine) as s:
                    queue.renew(
                        s,
                        job_ids=held,
                        worker_id=self.worker_id,
                        lease_seconds=self.settings.job_lease_seconds,
                    )
            except Exception:
                log.exception("heartbeat failed")

    # -- one round -----------------------------------------------------------------------------
    def run_once(self) -> bool:
        jobs = self._claim()
        if not jobs:
            return False
        handler = self.handlers[jobs[0].kind]
        with self._held_lock:
            self._held = [j.id for j in jobs if j.id is not None]
        try:
            self._run(handler, jobs)
        finally:
            with self._held_lock:
                self._held = []
        return True

    def tier_order(self) -> list[list[str]]:
        """Most urgent tier first, except every ``background_share``-th round, which offers the
        lower tiers first: due deliveries are never stuck behind thousands of escalation notices,
        and escalations still get a share of the rounds while a delivery backlog lasts."""
        self._rounds += 1
        every = self.settings.background_share
        if every > 0 and self._rounds % every == 0:
            return self._tiers[::-1]
        return self._tiers

    def _claim(self) -> list[Job]:
        with session_scope(self.engine) as s:
            now = utcnow()
            kind = None
            for kinds in self.tier_order():
                kind = queue.next_due_kind(s, kinds, now)
                if kind is not None:
                    break
            if kind is None:
                return []
            return queue.claim(
                s,
                kind=kind,
                worker_id=self.worker_id,
                limit=self.handlers[kind].batch_size,
                lease_seconds=self.settings.job_lease_seconds,
            )

    def _run(self, handler: JobHandler, jobs: list[Job]) -> None:
        job_ids = ",".join(str(j.id) for j in jobs)
        adapter = bind_context(log, job_id=job_ids, job_kind=handler.kind)
        ctx = JobContext(engine=self.engine, jobs=jobs, worker_id=self.worker_id, log=adapter)
        started = time.perf_counter()
        try:
            handler.run(ctx)
            self._maybe_crash(handler.kind)
            s = ctx.session
            for job in jobs:
                if job.id in ctx.failures:
                    error, retry = ctx.failures[job.id]
                    state = queue.fail(
                        s,
                        job=job,
                        worker_id=self.worker_id,
                        error=error,
                        policy=self.policy,
                        retry=retry,
                    )
                    metrics.JOBS_FINISHED.labels(handler.kind, state).inc()
                    adapter.warning("job failed: %s", error, extra={"state": state})
                else:
                    queue.complete(s, job=job, worker_id=self.worker_id)
                    metrics.JOBS_FINISHED.labels(handler.kind, "done").inc()
            s.commit()
            for job in jobs:
                metrics.JOB_LATENCY.labels(handler.kind).observe(
                    (utcnow() - as_utc(job.created_at)).total_seconds()
                )
        except queue.LeaseLost as exc:
            ctx.session.rollback()
            adapter.warning("lease lost, effects rolled back: %s", exc)
        except Exception as exc:
            if ctx._session is not None:
                ctx.session.rollback()
            permanent = isinstance(exc, PermanentJobError)
            error = f"{type(exc).__name__}: {exc}"
            adapter.exception("job raised")
            with session_scope(self.engine) as s:
                for job in jobs:
                    state = queue.fail(
                        s,
                        job=job,
                        worker_id=self.worker_id,
                        error=error,
                        policy=self.policy,
                        retry=not permanent,
                    )
                    metrics.JOBS_FINISHED.labels(handler.kind, state).inc()
        finally:
            if ctx._session is not None:
                ctx.session.close()
            metrics.JOB_RUN_SECONDS.labels(handler.kind).observe(time.perf_counter() - started)

    def _maybe_crash(self, kind: str) -> None:
        """Fault injection for the crash tests: die after the effect, before the commit."""
        crash_at(f"{kind}:after_handler", self.settings)
