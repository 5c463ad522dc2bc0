"""Durable ingest with group commit: the only work done before a webhook's 2xx.

Each request appends its raw event to a pending list and waits. One flusher task on the event loop
takes everything that has queued up, stores it in one transaction (one fsync), and only then
releases the waiting requests (invariant 1). Under load a commit carries dozens of events, so
throughput grows with concurrency while every acknowledged event is on disk.

The write runs on the event loop thread on purpose: a batch costs about a millisecond, and a
separate writer thread measured slower, because it must re-take the GIL from a busy event loop
after every database call (see docs/decisions/0001-foundation.md and benchmarks/ingest.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub import metrics
from hub.storage.raw_events import (
    IncomingEvent,
    Rejection,
    Stored,
    store_events_bulk,
    store_rejection,
)

log = logging.getLogger("clienthub.ingest")


@dataclass
class _Item:
    payload: IncomingEvent | Rejection
    future: asyncio.Future[Stored | None]


class IngestWriter:
    def __init__(self, engine: Engine, *, batch_max: int = 256) -> None:
        self.engine = engine
        self.batch_max = batch_max
        self._pending: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(self, event: IncomingEvent) -> Stored:
        result = await self._submit(event)
        assert result is not None
        return result

    async def reject(self, rejection: Rejection) -> None:
        await self._submit(rejection)

    def store_sync(self, event: IncomingEvent) -> Stored:
        """For callers outside the event loop (pollers, tests): one transaction of their own."""
        (result,) = self._write([event])
        assert result is not None
        return result

    async def drain(self) -> None:
        """Wait until every pending event is committed (shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await self._flusher

    async def _submit(self, payload: IncomingEvent | Rejection) -> Stored | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored | None] = loop.create_future()
        self._pending.append(_Item(payload, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            # One turn of the loop lets every request that is already readable join the batch.
            await asyncio.sleep(0)
            batch = self._pending[: self.batch_max]
            del self._pending[: len(batch)]
            self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            results = self._write([i.payload for i in batch])
        except Exception:
            # One bad row must not fail its neighbours: fall back to one transaction each.
            log.exception("group commit failed; retrying %d events one by one", len(batch))
            for item in batch:
                try:
                    (result,) = self._write([item.payload])
                except Exception as exc:
                    item.future.set_exception(exc)
                else:
                    item.future.set_result(result)
            return
        metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    def _write(self, payloads: list[IncomingEvent | Rejection]) -> list[Stored | None]:
        events = [p for p in payloads if isinstance(p, IncomingEvent)]
        with self.engine.begin() as conn:
            for p in payloads:
                if isinstance(p, Rejection):
                    store_rejection(conn, p)
            stored = iter(store_events_bulk(conn, events) if events else [])
        results: list[Stored | None] = [
            None if isinstance(p, Rejection) else next(stored) for p in payloads
        ]
        for p, result in zip(payloads, results, strict=True):
            if isinstance(p, Rejection):
                metrics.REJECTED.labels(str(p.status_code)).inc()
            elif result is not None:
                counter = metrics.DUPLICATES if result.duplicate else metrics.INGESTED
                counter.labels(p.channel).inc()
        return results
