"""Admin UI at a million appeals: the appeals list, an appeal page and the dashboard over real
HTTP from `clienthub web`, on SQLite; latency per page (p50, p95, max) and the server's RSS.

The database is filled by `clienthub demo --generate N` (the same code, run as a subprocess) and
can be kept for later runs with --db. The list is asked with the filters staff use (none, a
channel, a department, an assignee, filtered ones, unknown region, one day three months ago, a
phone number, the next page); appeal pages are random ids over the whole range. The first
dashboard view after generation rolls up every past day once; it is reported on its own line and
then the dashboard is measured as staff see it.

    python -m benchmarks.ui [N=1000000] [--db PATH] [--requests 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pg import free_port  # noqa: E402

LOGIN, PASSWORD = "bench", "bench-password-1"


def _env(db: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CLIENTHUB_DATABASE_URL": f"sqlite:///{db}",
        "CLIENTHUB_KEY_FILE": str(db.with_suffix(".key")),
        "CLIENTHUB_SANDBOX_DB": str(db.with_suffix(".sandbox.db")),
        "CLIENTHUB_LOG_LEVEL": "WARNING",
    }


def _clienthub(db: Path, *args: str) -> None:
    code = (
        "import sys; from hub.cli import app; from hub.cli_demo import demo_app;"
        "from hub.cli_users import users_app;"
        "app.add_typer(demo_app, name='demo'); app.add_typer(users_app, name='users');"
        "app(prog_name='clienthub')"
    )
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=_env(db), check=True)


def _count(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM appeals").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def prepare(db: Path, n: int) -> None:
    have = _count(db)
    if have < n:
        started = time.monotonic()
        _clienthub(db, "demo", "--generate", str(n - have))
        print(f"generated {n - have:,} appeals in {time.monotonic() - started:.0f} s")
    with contextlib.suppress(subprocess.CalledProcessError):  # kept from an earlier run
        _clienthub(db, "users", "add", LOGIN, "--role", "admin", "--password", PASSWORD)


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of the server process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _urls(client: httpx.Client, n: int, rng: random.Random) -> dict[str, list[str]]:
    first = client.get("/ui/appeals").text
    cursor = first.split("cursor=")[1].split('"')[0]
    day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 90 * 86400))
    phone = first.split("+79")[1][:9] if "+79" in first else "9161234567"
    lists = [
        "/ui/appeals",
        "/ui/appeals?channel=vk",
        "/ui/appeals?department=hr",
        "/ui/appeals?assignee=hr-002",
        "/ui/appeals?state=filtered",
        "/ui/appeals?region=__none__",
        f"/ui/appeals?since={day}&until={day}",
        f"/ui/appeals?search=%2B79{phone}",
        f"/ui/appeals?cursor={cursor}",
        "/ui/appeals?channel=mango&topic=vacancy",
    ]
    return {
        "appeals list": lists,
        "appeal page": [f"/ui/appeals/{rng.randint(1, n)}" for _ in range(500)],
        "dashboard": ["/ui/dashboard"],
        "  overdue part": ["/ui/dashboard/overdue"],  # the widget htmx loads after the page
    }


def _measure(client: httpx.Client, urls: list[str], requests: int) -> list[float]:
    times = []
    for i in range(requests):
        started = time.perf_counter()
        r = client.get(urls[i % len(urls)])
        times.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{urls[i % len(urls)]}: HTTP {r.status_code}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("appeals", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="keep (or reuse) the generated database here")
    parser.add_argument("--requests", type=int, default=200, help="per page")
    args = parser.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="clienthub-ui-bench-")
        args.db = Path(tmp.name) / "clienthub.db"
    prepare(args.db, args.appeals)
    n = _count(args.db)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hub", "web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**_env(args.db), "CLIENTHUB_SCHEDULER_ENABLED": "false"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("clienthub web did not start") from None
                time.sleep(0.2)
        client = httpx.Client(base_url=base, timeout=120)
        page = client.get("/ui/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/ui/login", data={"login": LOGIN, "password": PASSWORD, "csrf_token": token})
        started = time.perf_counter()
        client.get("/ui/dashboard")
        first_dashboard = (time.perf_counter() - started) * 1000
        urls = _urls(client, n, random.Random(1))
        for group in urls.values():  # warm caches: compiled rules, templates, labels
            _measure(client, group, min(len(group), 10))
        print(f"\n{n:,} appeals in SQLite ({args.db.stat().st_size / 2**30:.1f} GB), "
              f"{args.requests} sequential requests per page over HTTP")  # fmt: skip
        print(f"first dashboard view (rolls up every past day once): {first_dashboard:,.0f} ms")
        print(f"{'page':<14} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        over = []
        for name, group in urls.items():
            times = sorted(_measure(client, group, args.requests))
            p95 = times[int(0.95 * (len(times) - 1))]
            if p95 >= 200:
                over.append(name.strip())
            print(f"{name:<14} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
        rss, peak = _rss_mb(server.pid)
        print(f"server RSS: {rss:.0f} MB now, {peak:.0f} MB peak")
        over += ["RSS"] if peak >= 300 else []
        print(
            f"target p95 < 200 ms, RSS < 300 MB: {'OK' if not over else 'over: ' + ', '.join(over)}"
        )
    finally:
        server.terminate()
        server.wait(30)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
