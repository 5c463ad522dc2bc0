"""Job handler contract and the registry ``JOB_HANDLERS`` (job kind -> handler)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.db import session_scope
from hub.models import Job
from hub.settings import Settings, get_settings


def crash_at(point: str, settings: Settings | None = None) -> None:
    """Fault injection for crash tests: SIGKILL this process at ``point`` ("KIND:where") when
    the setting ``fault_kill_at`` names it; a no-op otherwise."""
    if point and (settings or get_settings()).fault_kill_at == point:
        logging.getLogger("clienthub.faults").warning("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


class PermanentJobError(Exception):
    """The job can never succeed as it is (bad data): dead at once, no retries."""


@dataclass
class JobContext:
    """What a handler gets.

    ``session`` is the transaction that commits the handler's effects together with the jobs'
    completion. It begins lazily at first use; on SQLite it holds the single write lock, so do
    reads through ``read()`` and all network I/O *before* first touching ``session``.
    """

    engine: Engine
    jobs: list[Job]
    worker_id: str
    log: logging.LoggerAdapter[logging.Logger]
    _session: Session | None = None
    failures: dict[int, tuple[str, bool]] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.engine, expire_on_commit=False)
        return self._session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with session_scope(self.engine, read_only=True) as s:
            yield s

    def fail(self, job: Job, error: str, *, retry: bool = True) -> None:
        """Fail one job of a batch; the others still complete."""
        assert job.id is not None
        self.failures[job.id] = (error, retry)


FOREGROUND = 0  # intake, delivery, replies: what a customer or an operator is waiting for
BACKGROUND = 1  # escalations, reassignments, status reports: later is fine, never is not


@dataclass(frozen=True)
class JobHandler:
    kind: str
    run: Callable[[JobContext], None]
    batch_size: int = 1  # >1: the worker hands over up to this many due jobs of the kind at once
    # Background kinds yield to due foreground jobs (hub/worker.py: _claim); a backlog of
    # escalation notices must not hold back deliveries that share the portal's rate limit.
    priority: int = FOREGROUND


@cache
def job_handlers() -> dict[str, JobHandler]:
    """Imported lazily: handlers depend on most of the hub."""
    from hub import pipeline, telephony
    from hub.bitrix24 import jobs as b24_jobs

    handlers: list[JobHandler] = [*pipeline.HANDLERS, *b24_jobs.HANDLERS, *telephony.handlers()]
    from hub.bitrix24.openlines import reply_handlers  # replies, Open Lines, app setup

    handlers += reply_handlers()
    from hub import escalation  # reaction time: escalation steps, absence reassignment

    handlers += escalation.HANDLERS
    return {h.kind: h for h in handlers}
