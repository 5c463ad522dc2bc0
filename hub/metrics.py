"""Prometheus metrics, exported at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INGESTED = Counter("clienthub_ingested_total", "Raw events stored", ["channel"])
DUPLICATES = Counter("clienthub_duplicates_total", "Platform retries acknowledged", ["channel"])
REJECTED = Counter("clienthub_rejected_total", "Requests refused", ["status"])
JOBS_FINISHED = Counter("clienthub_jobs_finished_total", "Job runs by outcome", ["kind", "state"])
JOB_LATENCY = Histogram(
    "clienthub_job_latency_seconds",
    "From job creation to completion",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
JOB_RUN_SECONDS = Histogram("clienthub_job_run_seconds", "Handler run time", ["kind"])
INGEST_SECONDS = Histogram(
    "clienthub_ingest_commit_seconds",
    "Group commit duration",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
