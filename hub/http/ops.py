"""Operations endpoints: liveness, readiness (database and migrations) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Engine

from hub import migrations, queue
from hub.db import session_scope

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = migrations.current_and_head(engine)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503
        )
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"migrations at {current}, expected {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "migration": current})


class JobsCollector(Collector):
    """Jobs by kind and state, read from the database at scrape time (shared by all workers)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self):  # type: ignore[no-untyped-def]
        gauge = GaugeMetricFamily(
            "clienthub_jobs", "Jobs by kind and state", labels=["kind", "state"]
        )
        try:
            with session_scope(self.engine, read_only=True) as s:
                counts = queue.counts_by_state(s)
        except Exception:
            counts = {}
        for (kind, state), n in sorted(counts.items()):
            gauge.add_metric([kind, state], n)
        yield gauge


_collectors: dict[int, JobsCollector] = {}


def register_collectors(engine: Engine) -> None:
    for collector in _collectors.values():
        REGISTRY.unregister(collector)
    _collectors.clear()
    collector = JobsCollector(engine)
    REGISTRY.register(collector)
    _collectors[id(engine)] = collector


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
