"""The portal's leaky bucket, shared by every worker through the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hub.bitrix24.ratelimit import DbRateLimiter, MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.t += timedelta(seconds=seconds)


class TestMemoryRateLimiter:
    def test_burst_then_rate(self):
        clock = Clock()
        limiter = MemoryRateLimiter(50, 2.0, now=clock.now, sleep=clock.sleep)
        for _ in range(50):
            limiter.acquire("user.get")
        assert clock.slept == []
        for _ in range(4):
            limiter.acquire("user.get")
        assert sum(clock.slept) == 2.0  # 2 requests a second once the burst is spent


class TestDbRateLimiter:
    def test_two_workers_share_one_bucket(self, engine):
        clock = Clock()
        first = DbRateLimiter(engine, "b24:portal", 5, 2.0, now=clock.now, sleep=clock.sleep)
        second = DbRateLimiter(engine, "b24:portal", 5, 2.0, now=clock.now, sleep=clock.sleep)
        for _ in range(3):
            first.acquire("crm.item.add")
        for _ in range(2):
            second.acquire("crm.item.add")
        assert clock.slept == []
        second.acquire("batch")  # the sixth request in the same instant must wait half a second
        assert clock.slept == [0.5]
        assert 4.9 <= first.level() <= 5.0

    def test_query_limit_penalty_slows_everyone(self, engine):
        clock = Clock()
        first = DbRateLimiter(engine, "b24:portal", 50, 2.0, now=clock.now, sleep=clock.sleep)
        second = DbRateLimiter(engine, "b24:portal", 50, 2.0, now=clock.now, sleep=clock.sleep)
        first.penalize(3.0)
        second.acquire("user.get")
        assert sum(clock.slept) >= 3.0

    def test_operation_time_limit_blocks_only_that_method(self, engine):
        clock = Clock()
        first = DbRateLimiter(engine, "b24:portal", 50, 2.0, now=clock.now, sleep=clock.sleep)
        second = DbRateLimiter(engine, "b24:portal", 50, 2.0, now=clock.now, sleep=clock.sleep)
        first.block_method("crm.item.list", clock.now() + timedelta(seconds=4))
        second.acquire("crm.item.add")
        assert clock.slept == []
        second.acquire("crm.item.list")
        assert sum(clock.slept) >= 4.0

    def test_threads_never_overdraw(self, engine):
        """Real time: 8 threads × 3 requests against burst 10 at 50/s: the last ones wait."""
        limiter = DbRateLimiter(engine, "b24:threads", 10, 50.0)
        taken: list[datetime] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(3):
                limiter.acquire("batch")
                with lock:
                    taken.append(datetime.now(UTC))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        span = (max(taken) - min(taken)).total_seconds()
        assert len(taken) == 24
        assert span >= (24 - 10) / 50.0 * 0.9  # 14 requests beyond the burst, at 50 a second
