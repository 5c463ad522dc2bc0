"""Admin UI at a million appeals: every page staff open, over real HTTP from `clienthub web`, on
SQLite; latency per page (p50, p95, max) and the server's peak RSS, against the targets (p95 under
200 ms, RSS under 300 MB). Exits 1 when a target is missed, so CI or a release check can use it.

The database is filled by `clienthub demo --generate N` (the same code, run as a subprocess) and
can be kept for later runs with --db. The list is asked with the filters staff use (none, a
channel, a department, an assignee, filtered ones, unknown region, one day three months ago, the
next page) and with searches (a phone number, Russian words in another form than written, a
name); appeal pages are random ids over the whole range. The first (cold) dashboard view after
generation rolls up every past day once: it is measured on its own, with its own target
(``--cold-target``, 30 s), then the dashboard is measured as staff see it. The queue, channels
and rules pages are measured too.

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
        f"/ui/appeals?cursor={cursor}",
        "/ui/appeals?channel=mango&topic=vacancy",
    ]
    # Words in another form than the generator writes them («плесень», «жалобу», «работу»).
    searches = [
        f"/ui/appeals?search=%2B79{phone}",
        f"/ui/appeals?search=8+{phone[:2]}+{phone[2:5]}-{phone[5:7]}-{phone[7:]}",
        "/ui/appeals?search=плесенью",
        "/ui/appeals?search=жалоба+персонал",
        "/ui/appeals?search=бонусов",
        "/ui/appeals?search=просроченного+творога",
        "/ui/appeals?search=работы&channel=vk",
        f"/ui/appeals?search=плесени&since={day}&until={day}",
    ]
    month = time.strftime("%Y-%m-%d", time.localtime(time.time() - 120 * 86400))
    half_year = time.strftime("%Y-%m-%d", time.localtime(time.time() - 270 * 86400))
    # Common words over a long period: sorting every match by receive time would read them all.
    long_searches = [
        f"/ui/appeals?search=жалоба&since={month}&until={day}",
        f"/ui/appeals?search=работы&since={half_year}&until={day}",
        f"/ui/appeals?search=магазина&since={half_year}",
    ]
    return {
        "appeals list": lists,
        "search": searches,
        "  over months": long_searches,
        "appeal page": [f"/ui/appeals/{rng.randint(1, n)}" for _ in range(500)],
        "dashboard": ["/ui/dashboard"],
        "  overdue part": ["/ui/dashboard/overdue"],  # the widget htmx loads after the page
        "queue": ["/ui/queue", "/ui/queue?state=all", "/ui/queue?state=done"],
        "channels": ["/ui/channels"],
        "rules": ["/ui/rules"],
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


def _report(rows: list[tuple[str, list[float], float]]) -> list[str]:
    """Prints the table; returns the pages over their target."""
    print(f"{'page':<16} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'target':>8}")
    over = []
    for name, times, target in rows:
        times = sorted(times)
        p95 = times[int(0.95 * (len(times) - 1))]
        mark = "" if p95 < target else "  OVER"
        if mark:
            over.append(name.strip())
        print(
            f"{name:<16} {len(times):>5} {statistics.median(times):9.1f} {p95:9.1f} "
            f"{times[-1]:9.1f} {target:>8,.0f}{mark}"
        )
    return over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("appeals", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="keep (or reuse) the generated database here")
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--target-ms", type=float, default=200.0, help="p95 target per page")
    parser.add_argument("--rss-mb", type=float, default=300.0, help="peak RSS target")
    parser.add_argument(
        "--cold-target", type=float, default=30_000.0, help="first dashboard view, ms"
    )
    args = parser.parse_args()
    tmp = None
    failed = True
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
        cold = client.get("/ui/dashboard")
        first_dashboard = (time.perf_counter() - started) * 1000
        if cold.status_code != 200:
            raise RuntimeError(f"/ui/dashboard: HTTP {cold.status_code}")
        urls = _urls(client, n, random.Random(1))
        for group in urls.values():  # warm caches: compiled rules, templates, labels
            _measure(client, group, min(len(group), 10))
        print(f"\n{n:,} appeals in SQLite ({args.db.stat().st_size / 2**30:.2f} GB), "
              f"{args.requests} sequential requests per page over HTTP")  # fmt: skip
        rows = [("dashboard, cold", [first_dashboard], args.cold_target)]
        rows += [
            (name, _measure(client, group, args.requests), args.target_ms)
            for name, group in urls.items()
        ]
        over = _report(rows)
        rss, peak = _rss_mb(server.pid)
        print(f"server RSS: {rss:.0f} MB now, {peak:.0f} MB peak (target {args.rss_mb:.0f} MB)")
        over += ["RSS"] if peak >= args.rss_mb else []
        print(
            f"targets: p95 < {args.target_ms:.0f} ms, RSS < {args.rss_mb:.0f} MB, first "
            f"dashboard < {args.cold_target / 1000:.0f} s: "
            f"{'OK' if not over else 'MISSED: ' + ', '.join(over)}"
        )
        failed = bool(over)
    finally:
        server.terminate()
        server.wait(30)
        if tmp is not None:
            tmp.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
