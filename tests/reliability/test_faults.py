"""Faults injected into a running cluster (two web processes, three workers, PostgreSQL of its
own so that it can be restarted): after each the run converges with nothing lost or doubled, and
what needs a human is in the dead letters. CI runs a seeded 12-kill loop; benchmarks/scale.py runs
the 50-kill one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from hub.db import make_engine, reset_engines
from hub.settings import get_settings
from tests.pg import TempCluster
from tests.reliability.cluster import Cluster
from tests.reliability.conftest import TEST_RATE
from tests.reliability.faults import Scenarios
from tests.reliability.traffic import configure_sources, print_table

KILLS = int(os.environ.get("CLIENTHUB_FAULT_KILLS", "12"))
PER_SCENARIO = int(os.environ.get("CLIENTHUB_FAULT_APPEALS", "150"))
CALLS = 20  # hotline calls with recordings while the recordings disk is full


@pytest.fixture
def own_pg() -> Iterator[tuple[TempCluster, str]]:
    """A PostgreSQL of this test's own: one scenario restarts it under load."""
    pg = TempCluster()
    url = pg.migrated_database(pg.start(), "faults")
    try:
        yield pg, url
    finally:
        pg.stop()


@pytest.fixture
def scenarios(
    own_pg: tuple[TempCluster, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scenarios]:
    pg, url = own_pg
    # A short retry horizon so that the poison payload and any real failure show as dead jobs
    # within the test; transient faults still retry many times inside it.
    cluster = Cluster(
        url, tmp_path / "cluster", rate_per_second=TEST_RATE,
        env={"CLIENTHUB_RETRY_HORIZON_HOURS": "0.05"},
    )  # fmt: skip
    cluster.base_env.update(cluster.app_env())  # the disk-full scenario's calls
    monkeypatch.setenv("CLIENTHUB_SECRET_KEY", cluster.key)
    get_settings.cache_clear()
    reset_engines()
    engine: Engine = make_engine(url)  # pre-pings: it survives the PostgreSQL restart
    try:
        configure_sources(engine)
        cluster.start(webs=2, workers=3)
        yield Scenarios(cluster, engine, pg)
    finally:
        cluster.stop()
        engine.dispose()
        get_settings.cache_clear()
        reset_engines()


@pytest.mark.slow
@pytest.mark.pg
def test_every_fault_converges_with_nothing_lost_or_doubled(scenarios: Scenarios) -> None:
    s = scenarios
    try:
        s.worker_kill_loop(PER_SCENARIO, kills=KILLS)
        s.web_kill_during_ingest(PER_SCENARIO)
        s.whole_stack_kill(PER_SCENARIO)
        s.postgres_restart(PER_SCENARIO)
        s.portal_outage(PER_SCENARIO // 2, seconds=6)
        disk = s.recordings_disk_full(CALLS, seconds=4)
        poison = s.poison_payload()
    finally:
        print_table("faults injected", s.rows)
    for row in s.rows:
        assert (row["duplicates"], row["lost"]) == (0, 0), row
        assert row["deals_out"] == row["threads"], row
        assert row["comments_out"] == row["appeals_in"], row
    assert s.rows[0]["injected"] == KILLS
    assert all(r["injected"] >= 1 for r in s.rows), "a fault was not injected"
    assert [r["dead_jobs"] for r in s.rows[:-1]] == [0] * (len(s.rows) - 1)
    assert poison["dead_jobs"] == 1 and poison["dead_letters"] == 1
    assert disk["calls_refused"] == CALLS, "an upload never met the full disk"
    assert (disk["calls_registered"], disk["records_attached"]) == (CALLS, CALLS), disk
