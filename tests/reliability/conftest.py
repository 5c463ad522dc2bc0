"""Fixtures for the multi-process reliability tests: a cluster on a fresh PostgreSQL database and
an engine in this process that shares the cluster's secret key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from hub.db import make_engine, reset_engines
from hub.settings import get_settings
from tests.reliability.cluster import Cluster

# The sandbox portal's limit in these tests. A real portal allows 2 requests/s; 5/s keeps the
# suite inside CI's time while every batch still goes through the same bucket, the same
# QUERY_LIMIT_EXCEEDED refusals and the same pacing code (benchmarks/delivery.py measures the
# 2/s case itself).
TEST_RATE = 5.0


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    c = Cluster(pg_url, tmp_path / "cluster", rate_per_second=TEST_RATE)
    # Secrets written by this process must decrypt in the cluster's processes.
    monkeypatch.setenv("CLIENTHUB_SECRET_KEY", c.key)
    monkeypatch.setenv("CLIENTHUB_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    reset_engines()
    try:
        yield c
    finally:
        c.stop()
        get_settings.cache_clear()
        reset_engines()


@pytest.fixture
def cluster_engine(cluster: Cluster) -> Iterator[Engine]:
    engine = make_engine(cluster.db_url)
    yield engine
    engine.dispose()
