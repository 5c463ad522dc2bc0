"""Scale-out and fault figures on PostgreSQL: the full-size runs of tests/reliability.

    python -m benchmarks.scale                     # 10,000 appeals, then the 50-kill loop etc.
    python -m benchmarks.scale --appeals 3000 --kills 50 --per-scenario 300

Starts its own PostgreSQL (fsync on, as production runs), the sandbox portal (2 req/s unless
--rate says otherwise), two web processes and three workers, and prints two tables: the
exactly-once audit of the scale run, and one row per injected fault (also when stopped early
with SIGTERM). Nobody answers the appeals, so their reaction-time escalations (portal calls under
the same limit) run too; they are background jobs and yield to due deliveries (hub/jobs.py).
The portal outage lasts --outage-minutes (10 by default, as the issue asks). Figures in
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.db import make_engine  # noqa: E402
from tests.pg import TempCluster  # noqa: E402
from tests.reliability.cluster import Cluster, wait_until  # noqa: E402
from tests.reliability.faults import Scenarios, busy_jobs, job_summary  # noqa: E402
from tests.reliability.traffic import (  # noqa: E402
    audit,
    configure_sources,
    make_events,
    print_table,
    send_all,
)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appeals", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--per-scenario", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2.0, help="portal requests per second")
    parser.add_argument("--outage-minutes", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=100, help="calls while the disk is full")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # stopped early: still print what was measured

    pg = TempCluster(durable=True)
    url = pg.migrated_database(pg.start(), "scale")
    workdir = Path(tempfile.mkdtemp(prefix="clienthub-scale-"))
    cluster = Cluster(url, workdir, rate_per_second=args.rate)
    cluster.base_env.update(cluster.app_env())  # the disk-full scenario's calls
    os.environ["CLIENTHUB_SECRET_KEY"] = cluster.key
    engine = make_engine(url)
    try:
        configure_sources(engine)
        cluster.start(webs=2, workers=3)
        cluster.faults(
            fail_commands=[
                {"method": m, "every": 20, "error": "INTERNAL_SERVER_ERROR"}
                for m in ("batch", "crm.item.add", "crm.timeline.comment.add")
            ]
        )
        events = make_events(args.appeals, seed=args.seed)
        started = time.monotonic()
        sent = asyncio.run(send_all([w.url for w in cluster.webs], events, retry_share=0.10))
        ingest_s = time.monotonic() - started
        wait_until(
            lambda: busy_jobs(engine) == 0, timeout=6 * 3600, every=2.0,
            explain=lambda: job_summary(engine),
        )  # fmt: skip
        total_s = time.monotonic() - started
        portal = cluster.portal()
        result = audit(engine, events, portal)
        lat = sorted(sent.latencies)
        print_table(
            f"scale-out: {args.appeals} appeals, 2 web, 3 workers, portal {args.rate} req/s, "
            "5 % of portal calls failing, 10 % platform retries",
            [
                {
                    **result.row(),
                    "requests": sent.requests,
                    "ingest_s": round(ingest_s, 1),
                    "ingest_per_s": round(args.appeals / ingest_s),
                    "p99_ingest_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1),
                    "p50_ingest_ms": round(statistics.median(lat) * 1000, 1),
                    "delivered_s": round(total_s, 1),
                    "portal_calls": sum(portal.calls.values()),
                    # Escalation notices and the requests that carried them (batched).
                    "notices": portal.notices,
                    "notice_requests": portal.notice_requests,
                }
            ],
        )
        cluster.faults(fail_commands=[])
        s = Scenarios(cluster, engine, pg, seed=args.seed, converge_timeout=3600.0)
        s.sent = list(events)
        s._next = args.appeals + 10_000
        try:
            s.worker_kill_loop(args.per_scenario, kills=args.kills)
            s.web_kill_during_ingest(args.per_scenario)
            s.whole_stack_kill(args.per_scenario)
            s.postgres_restart(args.per_scenario)
            s.portal_outage(args.per_scenario // 2, seconds=args.outage_minutes * 60)
            s.recordings_disk_full(args.calls, seconds=30)
            s.poison_payload()
        finally:
            print_table("faults injected", s.rows)
    finally:
        cluster.stop()
        engine.dispose()
        pg.stop()


if __name__ == "__main__":
    main()
