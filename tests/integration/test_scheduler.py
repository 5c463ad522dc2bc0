"""Scheduler leadership: exactly one leader; a dead leader is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

from sqlalchemy import select, update

from hub import queue
from hub.db import session_scope
from hub.models import Job, JobState
from hub.scheduler import LeaderLock, Scheduler, recover_leases
from hub.settings import get_settings
from hub.timeutil import utcnow


def test_only_one_candidate_leads_and_another_takes_over(engine):
    a = Scheduler(engine, get_settings(), election_seconds=0.2)
    b = Scheduler(engine, get_settings(), election_seconds=0.2)
    a.elect()
    b.elect()
    assert a.is_leader and not b.is_leader
    a.stop()  # the leader goes away
    b.elect()
    assert b.is_leader
    b.stop()


def test_leader_killed_with_sigkill_is_replaced(engine, env):
    """The lock dies with its process (PostgreSQL session / kernel flock), not after a timeout."""
    script = textwrap.dedent(
        """
        import sys, time
        from hub.db import make_engine
        from hub.scheduler import LeaderLock
        lock = LeaderLock(make_engine(sys.argv[1]))
        assert lock.try_acquire()
        print("leader", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, env],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
        },
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "leader"
        other = LeaderLock(engine)
        assert other.try_acquire() is False
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while not other.try_acquire():
            assert time.monotonic() < deadline, "leadership was not released by the dead process"
            time.sleep(0.1)
        other.release()
    finally:
        proc.kill()


def test_recover_leases_requeues_jobs_of_dead_workers(engine):
    with session_scope(engine) as s:
        queue.enqueue(s, "test.x", "a", {})
        s.execute(
            update(Job).values(
                state=JobState.running,
                locked_by="dead",
                locked_until=utcnow() - timedelta(seconds=5),
            )
        )
    assert recover_leases(engine) == 1
    with session_scope(engine, read_only=True) as s:
        job = s.execute(select(Job)).scalar_one()
    assert job.state == JobState.queued
    assert job.locked_by is None
