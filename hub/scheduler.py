"""APScheduler for pollers and housekeeping, run by exactly one leader among the processes.

Leadership is a PostgreSQL advisory lock held on a dedicated connection (released by the server
the moment the holder dies), or on SQLite an exclusive ``flock`` on a file beside the database
(released by the kernel when the process dies). Every process with a scheduler is a candidate
and re-tries the lock every few seconds, so a killed leader is replaced within one election tick.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection, Engine

from hub.db import session_scope
from hub.models import Job, JobState, RejectedRequest
from hub.settings import Settings
from hub.timeutil import utcnow

log = logging.getLogger("clienthub.scheduler")

ADVISORY_KEY = 0x434C4855  # "CLHU"


@dataclass(frozen=True)
class Periodic:
    name: str
    func: Callable[[Engine], Any]
    seconds: float


_PERIODICS: dict[str, Periodic] = {}


def register_periodic(name: str, func: Callable[[Engine], Any], seconds: float) -> None:
    """Pollers (2GIS, Yandex, OK...) and sweeps register here; only the leader runs them."""
    _PERIODICS[name] = Periodic(name, func, seconds)


class LeaderLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return self._still_held()
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
            ).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        path = Path(str(self.engine.url.database or "clienthub.db") + ".leader")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _still_held(self) -> bool:
        if self._conn is None:
            return True
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            log.warning("leader connection lost; stepping down")
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def recover_leases(engine: Engine) -> int:
    """Jobs whose worker died show as running until someone looks: put them back in the queue."""
    with session_scope(engine) as s:
        result = s.execute(
            update(Job)
            .where(Job.state == JobState.running, Job.locked_until < utcnow())
            .values(state=JobState.queued.value, locked_by=None, locked_until=None)
        )
    if result.rowcount:
        log.warning("recovered %d jobs from expired leases", result.rowcount)
    return result.rowcount


def prune(engine: Engine, *, done_jobs_days: int = 7, rejected_days: int = 90) -> None:
    now = utcnow()
    with session_scope(engine) as s:
        s.execute(
            delete(Job).where(
                Job.state == JobState.done, Job.finished_at < now - timedelta(days=done_jobs_days)
            )
        )
        s.execute(
            delete(RejectedRequest).where(
                RejectedRequest.received_at < now - timedelta(days=rejected_days)
            )
        )


class Scheduler:
    def __init__(
        self, engine: Engine, settings: Settings, *, election_seconds: float = 5.0
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.lock = LeaderLock(engine)
        self.election_seconds = election_seconds
        self._aps = BackgroundScheduler(timezone="UTC")
        self._leading = False
        self._mutex = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leading

    def start(self) -> None:
        from hub.pollers import register_all

        register_all()
        self._aps.add_job(
            self.elect,
            "interval",
            seconds=self.election_seconds,
            id="election",
            next_run_time=utcnow(),
        )
        self._aps.start()

    def stop(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)
        with self._mutex:
            self.lock.release()
            self._leading = False

    def elect(self) -> None:
        with self._mutex:
            holding = self.lock.try_acquire()
            if holding and not self._leading:
                self._leading = True
                log.info("became scheduler leader (pid %s)", os.getpid())
                self._add_leader_jobs()
            elif not holding and self._leading:
                self._leading = False
                self._remove_leader_jobs()

    def _periodics(self) -> list[Periodic]:
        retention = self.settings.retention_days
        return [
            Periodic("housekeeping.leases", recover_leases, 15),
            Periodic("housekeeping.prune", lambda e: prune(e, rejected_days=retention), 3600),
            *_PERIODICS.values(),
        ]

    def _add_leader_jobs(self) -> None:
        for p in self._periodics():
            self._aps.add_job(
                p.func,
                "interval",
                args=[self.engine],
                seconds=p.seconds,
                id=f"leader:{p.name}",
                max_instances=1,
                coalesce=True,
                replace_existing=True,
                next_run_time=utcnow(),
            )

    def _remove_leader_jobs(self) -> None:
        for job in self._aps.get_jobs():
            if job.id.startswith("leader:"):
                job.remove()
