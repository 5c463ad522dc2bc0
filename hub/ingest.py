"""Durable ingest with group commit: the only work done before a webhook's 2xx.

Every request hands its raw event to one writer thread and waits. The writer takes whatever has
queued up meanwhile, stores it in one transaction (one fsync), and only then releases the waiting
requests (invariant 1). Under load a commit carries dozens of events, so throughput scales with
concurrency while every acknowledged event is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue as stdqueue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub import metrics
from hub.storage.raw_events import IncomingEvent, Rejection, Stored, store_event, store_rejection

log = logging.getLogger("clienthub.ingest")

_STOP = object()


@dataclass
class _Item:
    payload: IncomingEvent | Rejection
    future: Future[Stored | None]


class IngestWriter:
    def __init__(self, engine: Engine, *, batch_max: int = 256) -> None:
        self.engine = engine
        self.batch_max = batch_max
        self._queue: stdqueue.Queue[_Item | object] = stdqueue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    # -- API -------------------------------------------------------------------------------------
    def submit(self, payload: IncomingEvent | Rejection) -> Future[Stored | None]:
        self.start()
        fut: Future[Stored | None] = Future()
        self._queue.put(_Item(payload, fut))
        return fut

    async def store(self, event: IncomingEvent) -> Stored:
        result = await asyncio.wrap_future(self.submit(event))
        assert result is not None
        return result

    async def reject(self, rejection: Rejection) -> None:
        await asyncio.wrap_future(self.submit(rejection))

    def store_sync(self, event: IncomingEvent, timeout: float = 30.0) -> Stored:
        result = self.submit(event).result(timeout)
        assert result is not None
        return result

    # -- writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Item] = [first]  # type: ignore[list-item]
            stop_after = False
            while len(batch) < self.batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except stdqueue.Empty:
                    break
                if nxt is _STOP:
                    stop_after = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            self._commit_batch(batch)
            if stop_after:
                return

    def _commit_batch(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            results = self._write(batch)
        except Exception:
            # One bad row must not fail its neighbours: fall back to one transaction each.
            log.exception("group commit failed; retrying %d events one by one", len(batch))
            for item in batch:
                try:
                    (result,) = self._write([item])
                except Exception as exc:
                    item.future.set_exception(exc)
                else:
                    item.future.set_result(result)
            return
        metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
        for item, result in zip(batch, results, strict=True):
            item.future.set_result(result)

    def _write(self, batch: list[_Item]) -> list[Stored | None]:
        results: list[Stored | None] = []
        with self.engine.begin() as conn:
            for item in batch:
                payload = item.payload
                if isinstance(payload, Rejection):
                    store_rejection(conn, payload)
                    results.append(None)
                else:
                    results.append(store_event(conn, payload))
        for item, result in zip(batch, results, strict=True):
            if isinstance(item.payload, Rejection):
                metrics.REJECTED.labels(str(item.payload.status_code)).inc()
            elif result is not None:
                counter = metrics.DUPLICATES if result.duplicate else metrics.INGESTED
                counter.labels(item.payload.channel).inc()
        return results
