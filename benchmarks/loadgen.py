"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams.

Run in its own process, so that the server under test keeps a core to itself. It is far cheaper
per request than an HTTP client library, so the figures measure the server, not the client.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from statistics import quantiles
from urllib.parse import urlsplit


@dataclass
class Result:
    ok: int
    failed: int
    seconds: float
    latencies_ms: list[float]

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies_ms)
        q = quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
        return {
            "requests": self.ok + self.failed,
            "ok": self.ok,
            "failed": self.failed,
            "rps": self.ok / self.seconds,
            "p50_ms": q[49],
            "p99_ms": q[98],
            "max_ms": lat[-1],
        }


def _request(host: str, path: str, n: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Idempotency-Key: bench-{n}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, total: int, concurrency: int, offset: int = 0) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counter = iter(range(offset, offset + total))
    latencies: list[float] = []
    ok = failed = 0
    body_tpl = (
        "name=%D0%98%D0%B2%D0%B0%D0%BD&phone=8916{n:07d}"
        "&message=%D0%97%D0%B4%D1%80%D0%B0%D0%B2%D1%81%D1%82%D0%B2%D1%83%D0%B9%D1%82%D0%B5+{n}"
    )

    async def conn() -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for n in counter:
                payload = _request(host, parts.path, n, body_tpl.format(n=n).encode())
                t0 = time.perf_counter()
                writer.write(payload)
                status = await _read_response(reader)
                latencies.append((time.perf_counter() - t0) * 1000)
                if 200 <= status < 300:
                    ok += 1
                else:
                    failed += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return Result(ok, failed, time.perf_counter() - started, latencies)


def main() -> None:
    url, total, concurrency, offset = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(url, total, concurrency, offset))
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
