"""Delivery into a Bitrix24 portal limited to 2 requests/s with a burst of 50 (the sandbox, served
by uvicorn in a second process, enforcing the limit as a real portal would).

1. Backlog: N routed appeals (distinct people, every fourth a follow-up in an open thread) queued
   at once, delivered by two worker threads as `clienthub run` has them. Printed: REST requests
   per appeal (target ≤ 0.1), appeals/s against the physical limit the batch size allows
   (rate × b24_batch_appeals appeals/s once the burst is spent; target ≥ 80 %).
2. Idle: one appeal at a time, one a second, with the workers polling as in production. Printed:
   appeal received → deal visible in the CRM (``crm_visible_at``), p50/p95 (target p95 < 1 s).

Appeals are inserted as the pipeline leaves them (routed, job queued): this measures delivery,
not ingest or routing. Afterwards every appeal is checked to be in the portal exactly once.

    python -m benchmarks.delivery [--appeals 5000] [--idle 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub import migrations, queue  # noqa: E402
from hub.bitrix24.factory import client_from_settings  # noqa: E402
from hub.bitrix24.jobs import KIND, make_handler  # noqa: E402
from hub.db import make_engine, session_scope  # noqa: E402
from hub.models import Appeal, AppealState, DeliveryState, Job, JobState, RateBucket  # noqa: E402
from hub.settings import Settings  # noqa: E402
from hub.timeutil import as_utc  # noqa: E402
from hub.worker import Worker  # noqa: E402
from tests.pg import free_port  # noqa: E402

SANDBOX = """
import sys, uvicorn
from pathlib import Path
from hub.bitrix24.sandbox import create_sandbox_app
app = create_sandbox_app(sys.argv[1], seed_dir=Path("routing_rules/sample"), rate=(50, 2.0))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def start_sandbox(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, str(db), str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=0.5)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sandbox did not start")


def add_appeals(engine, start: int, count: int) -> list[int]:
    ids = []
    with session_scope(engine) as s:
        for i in range(start, start + count):
            appeal = Appeal(
                channel="vk",
                source="club1",
                kind="message",
                text=f"Обращение {i}: есть ли вакансии продавца?",
                author_name=f"Клиент {i}",
                author_phone=f"+7916{(i // 4) % 10_000_000:07d}",
                thread_key=f"dialog-{i // 4}",  # 4 messages per dialogue: 1 deal, 4 comments
                region="Казань",
                topic="вакансия",
                state=AppealState.routed.value,
                bitrix_user_id=12,
                target={"entity": "deal", "pipeline": 2, "stage": "C2:NEW"},
                delivery_state=DeliveryState.pending.value,
            )
            s.add(appeal)
            s.flush()
            queue.enqueue(
                s, KIND, f"appeal:{appeal.id}", {"appeal_id": appeal.id}, appeal_id=appeal.id
            )
            ids.append(int(appeal.id))
    return ids


def pending(engine) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(
            s.execute(
                select(func.count()).select_from(Job).where(Job.state != JobState.done)
            ).scalar_one()
        )


def top_calls(url: str, since: int = 0) -> list[dict]:
    return httpx.get(
        f"{url}/_sandbox/calls", params={"top": True, "since": since}, timeout=60
    ).json()["calls"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appeals", type=int, default=5000)
    parser.add_argument("--idle", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clienthub-bench-"))
    proc, url = start_sandbox(tmp / "sandbox.db")
    try:
        db_url = f"sqlite:///{tmp / 'hub.db'}"
        migrations.upgrade(db_url)
        engine = make_engine(db_url)
        settings = Settings(
            database_url=db_url,
            key_file=tmp / "hub.key",
            b24_webhook_url=f"{url}/rest/1/sandbox/",  # type: ignore[arg-type]
            public_url="https://hub.example",
            log_level="WARNING",
        )
        client = client_from_settings(settings, engine)
        handler = make_handler(lambda _e: client, settings)
        workers = [Worker(engine, settings=settings, handlers={KIND: handler}) for _ in range(2)]
        threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]

        # 1. backlog
        add_appeals(engine, 0, args.appeals)
        started = time.monotonic()
        for t in threads:
            t.start()
        while pending(engine):
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        calls = top_calls(url)
        requests = len(calls)
        refused = sum(1 for c in calls if c["error"] == "QUERY_LIMIT_EXCEEDED")
        rate, burst, per_batch = (
            settings.b24_rate_per_second,
            settings.b24_rate_burst,
            settings.b24_batch_appeals,
        )
        ats = [c["at"] for c in calls]
        sustained = (len(ats) - burst - 1) / (ats[-1] - ats[burst]) if len(ats) > burst + 1 else 0.0
        physical = per_batch * (burst + rate * elapsed)  # most appeals this time could carry
        print(f"backlog: {args.appeals} appeals delivered in {elapsed:.1f} s")
        print(f"  REST requests: {requests} ({refused} refused by the portal's limit)")
        print(f"  REST requests per appeal: {requests / args.appeals:.3f}  (target <= 0.1)")
        print(
            f"  throughput: {args.appeals / elapsed:.1f} appeals/s; physical limit at "
            f"{rate:g} req/s, burst {burst}, {per_batch} appeals per batch: "
            f"{physical / elapsed:.1f} appeals/s over the same {elapsed:.0f} s "
            f"-> {100 * args.appeals / physical:.0f} %  (target >= 80 %)"
        )
        print(
            f"  requests after the burst: {sustained:.2f} req/s of {rate:g} allowed; "
            f"{args.appeals / requests:.1f} appeals per request of {per_batch} possible"
        )

        # 2. idle latency: the bucket is let drain first, as on a quiet portal
        time.sleep(burst / rate / 4)
        with session_scope(engine) as s:
            row = s.get(RateBucket, f"b24:{client.auth.portal}")
            if row is not None:
                row.level = 0.0
        httpx.post(f"{url}/_sandbox/faults", json={"rate": {"burst": burst, "per_second": rate}})
        latencies = []
        for n in range(args.idle):
            [appeal_id] = add_appeals(engine, args.appeals + 4 * n, 1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with session_scope(engine, read_only=True) as s:
                    appeal = s.get(Appeal, appeal_id)
                    if appeal and appeal.crm_visible_at:
                        latencies.append(
                            (
                                as_utc(appeal.crm_visible_at) - as_utc(appeal.received_at)
                            ).total_seconds()
                        )
                        break
                time.sleep(0.01)
            time.sleep(1.0)
        for w in workers:
            w.stop()
        latencies.sort()
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)] if latencies else float("nan")
        print(
            f"idle: {len(latencies)}/{args.idle} appeals, received -> deal visible: "
            f"p50 {statistics.median(latencies):.3f} s, p95 {p95:.3f} s, max {latencies[-1]:.3f} s"
            "  (target p95 < 1 s)"
        )

        # exactly once
        state = httpx.get(f"{url}/_sandbox/state").json()
        with session_scope(engine, read_only=True) as s:
            delivered = s.execute(
                select(func.count())
                .select_from(Appeal)
                .where(Appeal.delivery_state == DeliveryState.delivered)
            ).scalar_one()
        total = args.appeals + args.idle
        threads_total = (args.appeals + 3) // 4 + args.idle
        print(
            f"check: {delivered}/{total} appeals delivered; portal has {state['deals']} deals "
            f"(expected {threads_total}), {state['comments']} comments (expected {total}), "
            f"{state['contacts']} contacts (expected {threads_total})"
        )
        ok = (delivered, state["comments"], state["deals"]) == (total, total, threads_total)
        print("exactly once: " + ("yes" if ok else "NO"))
        if not ok:
            raise SystemExit(1)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
