"""Soak: mixed traffic for a long time against two web processes and three workers on PostgreSQL.

    python -m benchmarks.soak                 # 30 minutes
    python -m benchmarks.soak --minutes 10

Every few seconds a wave of VK, Telegram and site-form events (10 % sent twice) goes through the
webhooks; operators answer some dialogues from the deal card (replies through the VK and Telegram
fakes); every few minutes a rule set is published again. Printed: throughput, p50/p99 ingest
latency per interval, the RSS of every ClientHub process over time (growth from the first to the
last third of the run), and the exactly-once audit at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.db import make_engine, session_scope  # noqa: E402
from hub.fakes.serve import serve  # noqa: E402
from hub.fakes.telegram import FakeTelegram  # noqa: E402
from hub.fakes.vk import FakeVk  # noqa: E402
from hub.models import Appeal, Reply  # noqa: E402
from hub.replies import store_card_reply  # noqa: E402
from hub.rules_io import read_dir  # noqa: E402
from hub.storage import rulesets  # noqa: E402
from tests.pg import TempCluster  # noqa: E402
from tests.reliability.cluster import SAMPLE_RULES, Cluster, wait_until  # noqa: E402
from tests.reliability.faults import busy_jobs, job_summary  # noqa: E402
from tests.reliability.traffic import (  # noqa: E402
    VK_GROUP,
    VK_SECRET,
    audit,
    configure_sources,
    make_events,
    print_table,
    send_all,
)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def publish_rules(engine: Engine, n: int) -> None:
    with session_scope(engine) as s:
        draft = rulesets.import_draft(
            session=s, files=read_dir(SAMPLE_RULES), created_by="soak", note=f"soak {n}"
        )
        rulesets.publish(session=s, published_by="soak", version_id=draft.id)


def answer_some(engine: Engine, since_id: int, limit: int) -> tuple[int, int]:
    """Reply to the first message of up to ``limit`` new VK/Telegram dialogues."""
    with session_scope(engine) as s:
        ids = s.execute(
            select(func.min(Appeal.id))
            .where(Appeal.id > since_id, Appeal.channel.in_(["vk", "telegram"]))
            .group_by(Appeal.channel, Appeal.thread_key)
            .limit(limit)
        ).scalars()
        n = 0
        top = since_id
        for appeal_id in ids:
            appeal = s.get(Appeal, appeal_id)
            assert appeal is not None
            store_card_reply(s, appeal=appeal, text=f"Ответ #{appeal_id}", user_id=1)
            n += 1
            top = max(top, appeal_id)
        return n, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--wave", type=int, default=150, help="events per wave")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between waves")
    parser.add_argument("--rate", type=float, default=5.0, help="portal requests per second")
    args = parser.parse_args()

    pg = TempCluster(durable=True)
    url = pg.migrated_database(pg.start(), "soak")
    cluster = Cluster(
        url, Path(tempfile.mkdtemp(prefix="clienthub-soak-")), rate_per_second=args.rate
    )
    os.environ["CLIENTHUB_SECRET_KEY"] = cluster.key
    engine = make_engine(url)
    vk = FakeVk(group_id=VK_GROUP, token="vk1.a.reliability", secret=VK_SECRET)
    tg = FakeTelegram(token="777:reliability")
    rows, rss_rows, all_events = [], [], []
    replies = 0
    try:
        with serve(vk.app) as vk_api, serve(tg.app) as tg_api:
            configure_sources(engine, vk_api=f"{vk_api}/method", tg_api=tg_api)
            cluster.start(webs=2, workers=3)
            started = time.monotonic()
            wave = 0
            replied_upto = 0
            while time.monotonic() - started < args.minutes * 60:
                t0 = time.monotonic()
                events = make_events(args.wave, seed=wave, start=wave * 100_000)
                sent = asyncio.run(send_all([w.url for w in cluster.webs], events, concurrency=16))
                all_events.extend(events)
                lat = sorted(sent.latencies)
                n, replied_upto = answer_some(engine, replied_upto, 10)
                replies += n
                if wave % 18 == 17:
                    publish_rules(engine, wave)
                rows.append(
                    {
                        "t_s": round(time.monotonic() - started),
                        "events": len(events),
                        "per_s": round(len(events) / max(sent.seconds, 1e-9)),
                        "p50_ms": round(statistics.median(lat) * 1000, 1),
                        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1),
                        "backlog": busy_jobs(engine),
                    }
                )
                rss_rows.append(
                    {"t_s": rows[-1]["t_s"]}
                    | {p.name: round(rss_mb(p.pid)) for p in [*cluster.webs, *cluster.workers]}
                )
                wave += 1
                time.sleep(max(0.0, args.every - (time.monotonic() - t0)))
            wait_until(
                lambda: busy_jobs(engine, ("parse.event", "deliver.appeal", "reply.send")) == 0,
                timeout=1800, every=2.0, explain=lambda: job_summary(engine),
            )  # fmt: skip
            result = audit(engine, all_events, cluster.portal())
            with session_scope(engine, read_only=True) as s:
                sent_replies = s.execute(
                    select(func.count()).select_from(Reply).where(Reply.state == "sent")
                ).scalar_one()
            replies_out = len(vk.messages) + len(tg.sent)
    finally:
        cluster.stop()
        engine.dispose()
        pg.stop()
    step = max(1, len(rows) // 12)
    print_table(f"ingest per wave (every {step}th wave)", rows[::step] + rows[-1:])
    print_table(f"RSS, MB (every {step}th sample)", rss_rows[::step] + rss_rows[-1:])
    third = max(1, len(rss_rows) // 3)
    growth = {
        name: round(
            statistics.mean(r[name] for r in rss_rows[-third:])
            - statistics.mean(r[name] for r in rss_rows[:third]),
            1,
        )
        for name in rss_rows[0]
        if name != "t_s"
    }
    total = sum(r["events"] for r in rows)
    print_table(
        f"soak: {args.minutes:g} min, {total} events, {replies} replies",
        [
            {
                "events_per_s_avg": round(total / (args.minutes * 60), 1),
                "p99_ingest_ms_worst": max(r["p99_ms"] for r in rows),
                "p99_ingest_ms_median": statistics.median(r["p99_ms"] for r in rows),
                "rss_growth_mb": growth,
                **result.row(),
                "replies_sent": sent_replies,
                "replies_out": replies_out,
            }
        ],
    )


if __name__ == "__main__":
    main()
