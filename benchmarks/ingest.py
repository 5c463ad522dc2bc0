"""Durable webhook ingest: ClientHub's form webhook on SQLite and PostgreSQL against a bare FastAPI
endpoint that does nothing, measured in the same run with the same load generator.

Every server is one uvicorn process; the load generator runs in a second process (this machine has
two cores). After each ClientHub run the script checks that every acknowledged request is a row in
``raw_events``: a figure bought by acknowledging before the commit would fail that check.

    python -m benchmarks.ingest [--requests 20000] [--concurrency 32] [--no-pg]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg import TempCluster, free_port  # noqa: E402


def _start(mode: str, url: str = "") -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIENTHUB_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ingest_server", mode, str(port), url],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(
                f"http://127.0.0.1:{port}/hooks/form/site", data={"message": "warm"}, timeout=1
            )
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{mode} server did not start")


def _load(port: int, requests: int, concurrency: int, offset: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            f"http://127.0.0.1:{port}/hooks/form/site",
            str(requests),
            str(concurrency),
            str(offset),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _measure(mode: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    proc, port = _start(mode, url)
    try:
        _load(port, min(2000, args.requests // 5), args.concurrency, 10_000_000)  # warm-up
        result = _load(port, args.requests, args.concurrency, 0)
    finally:
        proc.terminate()
        proc.wait(30)
    if url:
        engine = create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT count(*) FROM raw_events WHERE external_id LIKE 'key:bench-%'")
            ).scalar_one()
            jobs = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
        engine.dispose()
        warm = min(2000, args.requests // 5)
        result["stored"] = stored
        assert stored == result["ok"] + warm, f"acknowledged {result['ok']} but stored {stored}"
        assert jobs >= stored
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    results["bare FastAPI (baseline)"] = _measure("bare", "", args)
    with tempfile.TemporaryDirectory() as tmp:
        results["ClientHub, SQLite (WAL, synchronous=FULL)"] = _measure(
            "hub", f"sqlite:///{tmp}/bench.db", args
        )
    if not args.no_pg:
        cluster = TempCluster(durable=True)
        admin = cluster.start()
        try:
            results["ClientHub, PostgreSQL (fsync on)"] = _measure("hub", admin, args)
        finally:
            cluster.stop()

    base = results["bare FastAPI (baseline)"]["rps"]
    print(
        f"\nDurable ingest, form webhook: {args.requests} requests, {args.concurrency} connections"
    )
    print(f"{'target':45} {'appeals/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
    for name, r in results.items():
        ratio = r["rps"] / base
        print(f"{name:45} {r['rps']:10.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {ratio:6.2f}")
    print("targets: SQLite >= 1000 appeals/s, p99 < 50 ms, ratio >= 0.5")


if __name__ == "__main__":
    main()
