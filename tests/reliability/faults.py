"""Fault scenarios against a running cluster; shared by tests/reliability/test_faults.py (small,
in CI) and benchmarks/scale.py (the full 50-kill loop).

Each scenario sends fresh traffic, injects its fault while that traffic is ingested and
delivered, then waits for the run to converge and audits everything sent so far: every
acknowledged event is one appeal, one comment in the portal and part of one deal per thread.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import Job
from tests.helpers import api_headers
from tests.pg import TempCluster
from tests.reliability.cluster import Cluster, wait_until
from tests.reliability.traffic import VK_GROUP, VK_SECRET, VK_SOURCE, Event, audit, send_all

# call.settle is left out: it is a fallback timer for a call that never ends, due hours later.
CALL_KINDS = ("parse.event", "deliver.appeal", "recording.fetch", "telephony.call")
CTI_SOURCE, CTI_TOKEN = "asterisk", "reliability-cti-token"
CTI_LINE = "74955920552"  # store 1002's line in routing_rules/sample/stores.csv


def busy_jobs(engine: Engine, kinds: tuple[str, ...] = ("parse.event", "deliver.appeal")) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(Job)
                .where(Job.kind.in_(kinds), Job.state.in_(["queued", "running"]))
            ).scalar_one()
        )


def job_summary(engine: Engine) -> str:
    with session_scope(engine, read_only=True) as s:
        counts = s.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ).all()
        errors = s.execute(
            select(Job.kind, Job.last_error)
            .where(Job.last_error.is_not(None))
            .order_by(Job.id.desc())
            .limit(3)
        ).all()
    return f"jobs {counts}; latest errors {errors}"


@dataclass
class Scenarios:
    cluster: Cluster
    engine: Engine
    pg: TempCluster | None = None
    seed: int = 20261123
    spread_seconds: float = 8.0  # traffic lasts this long, so that every fault lands inside it
    # How long a scenario may take to deliver its traffic; benchmarks/scale.py raises it for the
    # real portal limit of 2 requests/s (about 1.4 appeals/s).
    converge_timeout: float = 300.0
    sent: list[Event] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0

    def _events(self, count: int) -> list[Event]:
        from tests.reliability.traffic import make_events

        events = make_events(count, seed=self.seed + self._next, start=self._next)
        self._next += count + 10_000
        return events

    def _live_urls(self) -> list[str]:
        live = [w.url for w in self.cluster.webs if w.alive]
        return live or [w.url for w in self.cluster.webs]

    def _send(self, events: list[Event], during: Callable[[], int]) -> int:
        """Send while ``during`` injects the fault in a thread; returns how many it injected."""
        injected: list[int] = []
        thread = threading.Thread(target=lambda: injected.append(during()))
        thread.start()
        report = asyncio.run(
            send_all(
                self._live_urls, events, retry_share=0.10, seed=self.seed,
                concurrency=8, spread_seconds=self.spread_seconds,
            )
        )  # fmt: skip
        thread.join()
        assert report.acknowledged == {e.key for e in events}, "an event was never acknowledged"
        self.sent.extend(events)
        return injected[0] if injected else 0

    def _converge(
        self, fault: str, injected: int, kinds: tuple[str, ...] = ("parse.event", "deliver.appeal")
    ) -> dict[str, Any]:
        took = wait_until(
            lambda: busy_jobs(self.engine, kinds) == 0,
            timeout=self.converge_timeout,
            what=f"the run to converge after {fault}",
            explain=lambda: job_summary(self.engine),
        )
        result = audit(self.engine, self.sent, self.cluster.portal())
        row = {
            "fault": fault,
            "injected": injected,
            "appeals_in": result.events_in,
            "deals_out": result.deals_out,
            "threads": result.threads,
            "comments_out": result.comments_out,
            "duplicates": result.duplicate_deals + result.duplicate_comments,
            "lost": result.lost,
            "dead_jobs": result.dead_jobs,
            "converged_s": round(took, 1),
        }
        self.rows.append(row)
        return row

    # -- scenarios ------------------------------------------------------------------------------
    def worker_kill_loop(self, count: int, kills: int) -> dict[str, Any]:
        """SIGKILL a random worker at a random moment, ``kills`` times (seeded), restarting it at
        once: deaths mid-claim, mid-batch, mid-commit and mid-delivery."""
        rng = random.Random(self.seed)

        def loop() -> int:
            done = 0
            deadline = time.monotonic() + 120 + kills * 4
            while done < kills and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.3, 2.0))
                proc = rng.choice(self.cluster.workers)
                proc.signal(signal.SIGKILL)
                proc.wait(15)
                self.cluster.start_worker(proc.name)
                done += 1
            return done

        return self._converge("worker SIGKILL loop", self._send(self._events(count), loop))

    def web_kill_during_ingest(self, count: int) -> dict[str, Any]:
        def kill() -> int:
            time.sleep(0.5)
            self.cluster.kill("web1")
            time.sleep(2.0)
            self.cluster.start_web("web1")
            self.cluster.wait_http(self.cluster.procs["web1"])
            return 1

        return self._converge("web SIGKILL during ingest", self._send(self._events(count), kill))

    def whole_stack_kill(self, count: int) -> dict[str, Any]:
        """Everything dies at once (power cut), mid-ingest and mid-delivery, then starts again."""
        events = self._events(count)

        def kill_all() -> int:
            time.sleep(1.0)
            for proc in [*self.cluster.webs, *self.cluster.workers]:
                proc.signal(signal.SIGKILL)
            for proc in [*self.cluster.webs, *self.cluster.workers]:
                proc.wait(15)
            for proc in self.cluster.webs:
                self.cluster.start_web(proc.name)
            for proc in self.cluster.workers:
                self.cluster.start_worker(proc.name)
            for proc in self.cluster.webs:
                self.cluster.wait_http(proc)
            return 1

        return self._converge("whole stack SIGKILL", self._send(events, kill_all))

    def postgres_restart(self, count: int) -> dict[str, Any]:
        assert self.pg is not None, "this scenario needs a PostgreSQL it may restart"
        pg = self.pg

        def restart() -> int:
            time.sleep(1.0)
            pg._run(
                str(pg.bin / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.dir / "log"),
                "-m", "fast", "-w", "restart",
            )  # fmt: skip
            return 1

        return self._converge("PostgreSQL restart", self._send(self._events(count), restart))

    def portal_outage(self, count: int, seconds: float) -> dict[str, Any]:
        """The portal answers 503 to everything for a while; deliveries back off, then land.
        (Ten minutes of outage are simulated in tests/bitrix24/test_delivery.py.)"""

        def outage() -> int:
            self.cluster.faults(outage=True)
            time.sleep(seconds)
            self.cluster.faults(outage=False)
            return 1

        return self._converge("Bitrix24 portal down", self._send(self._events(count), outage))

    def recordings_disk_full(self, calls: int, seconds: float) -> dict[str, Any]:
        """The recordings directory is full (a real tmpfs filled to ENOSPC) while hotline calls
        come in and the PBX uploads their recordings: every call is delivered at once, every
        upload is refused with 507 (not acknowledged, so the PBX keeps the file and sends it
        again) until space is freed, then each recording is attached to its call once. Needs the
        cluster started with ``app_env()`` (telephony registers calls with the app's tokens)."""
        from hub.fakes.pbx import Recording, cti_post, cti_upload
        from hub.storage import sources as sources_store
        from tests.helpers import small_disk

        self.cluster.install_app(self.engine)
        with session_scope(self.engine) as s:
            sources_store.upsert(
                s, channel="cti", source=CTI_SOURCE, config={}, secrets={"token": CTI_TOKEN}
            )
        ids = [f"disk-{self.seed}-{n}" for n in range(calls)]
        refused: list[int] = []

        def one_call(n: int, call_id: str) -> None:
            url = self._live_urls()[n % len(self._live_urls())]
            caller = f"7916{self.seed % 1000:03d}{n:04d}"
            base = {"from": caller, "to": CTI_LINE, "direction": "in", "callId": call_id}
            events = [
                {"event": "newCall", "user": ["Оператор"]},
                {"event": "answer", "user": "Оператор", "answeringNumber": "105"},
                {"event": "hangup", "cause": "normalClearing", "user": "Оператор"},
            ]
            for event in events:
                r = cti_post(f"{url}/hooks/cti/{CTI_SOURCE}", {**base, **event}, token=CTI_TOKEN)
                assert r.status_code == 200, r.text
            rec = Recording(kind="wav", size=96_044)
            while True:  # the PBX's dialplan script retries until the upload is acknowledged
                r = cti_upload(
                    f"{url}/telephony/cti/{CTI_SOURCE}/recording", call_id, rec, token=CTI_TOKEN
                )
                if r.status_code == 200:
                    return
                assert r.status_code == 507, r.text
                refused.append(n)
                time.sleep(0.5)

        with small_disk(self.cluster.dir / "files", 2048) as filler:

            def free_space() -> None:
                # Space comes back ``seconds`` after every call's upload met the full disk.
                deadline = time.monotonic() + 300
                while len(set(refused)) < calls and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(seconds)
                filler.unlink()

            freer = threading.Thread(target=free_space)
            freer.start()
            workers = [threading.Thread(target=one_call, args=(n, c)) for n, c in enumerate(ids)]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
            freer.join()
            for call_id in ids:
                self.sent.append(Event(f"cti:{call_id}", "cti", CTI_SOURCE, b"", {}, call_id))
            row = self._converge("recordings disk full", 1, CALL_KINDS)
            wait_until(
                lambda: sum(1 for c in self.cluster.telephony() if c.get("record")) >= calls,
                timeout=self.converge_timeout,
                what="every call's recording to be attached",
                explain=lambda: job_summary(self.engine),
            )
        registered = self.cluster.telephony()
        row["uploads_refused"] = len(refused)
        row["calls_refused"] = len(set(refused))
        row["calls_registered"] = len(registered)
        row["records_attached"] = sum(int(c.get("records_attached") or 0) for c in registered)
        return row

    def poison_payload(self) -> dict[str, Any]:
        """A VK event with a valid secret and a broken body: acknowledged and stored, its parse
        job dead at once and listed in the dead letters (GET /api/jobs?state=dead)."""
        body = {
            "group_id": VK_GROUP,
            "type": "message_new",
            "event_id": f"poison-{self.seed}",
            "secret": VK_SECRET,
            "object": {"message": {"peer_id": "not a number", "text": ["not", "text"]}},
        }
        r = httpx.post(f"{self._live_urls()[0]}/hooks/vk/{VK_SOURCE}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        wait_until(lambda: busy_jobs(self.engine, ("parse.event",)) == 0, timeout=60)
        dead = self.dead_letters()
        row = self._converge("poison payload", 1)
        row["dead_letters"] = len(dead)
        return row

    def dead_letters(self) -> list[dict[str, Any]]:
        url = f"{self._live_urls()[0]}/api/jobs"
        auth = api_headers(self.engine, "operator")
        r = httpx.get(url, params={"state": "dead"}, headers=auth, timeout=10)
        r.raise_for_status()
        data = r.json()
        return list(data.get("jobs", data) if isinstance(data, dict) else data)
