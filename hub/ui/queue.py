"""The queue: jobs by state and kind, dead letters with their last error, retry one or all,
and how much of the Bitrix24 rate-limit budget is in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from hub import queue as job_queue
from hub.db import session_scope
from hub.storage import ui_queries as q
from hub.storage.users import SessionUser
from hub.timeutil import as_utc, utcnow
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/queue")
STATES = ("queued", "running", "dead", "done")
ALL = "all"  # the state filter's "every state"


@dataclass
class Budget:
    name: str
    level: float  # requests "in the bucket" now, after leaking since the last update
    burst: float
    rate: float
    blocked_until: datetime | None

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.level / self.burst)) if self.burst else 0


def _budgets(request: Request, rows: list) -> list[Budget]:  # type: ignore[type-arg]
    """Bucket rows as the limiter sees them now; per-method blocks (``…|op|…``) show when set."""
    settings = request.app.state.settings
    now = utcnow()
    out = []
    for row in rows:
        sandbox = "sandbox" in row.name
        rate = settings.sandbox_rate_per_second if sandbox else settings.b24_rate_per_second
        burst = settings.sandbox_rate_burst if sandbox else settings.b24_rate_burst
        elapsed = max(0.0, (now - as_utc(row.updated_at)).total_seconds())
        blocked = as_utc(row.blocked_until) if row.blocked_until else None
        if "|op|" in row.name and not (blocked and blocked > now):
            continue
        level = max(0.0, row.level - elapsed * rate)
        out.append(
            Budget(row.name, level, burst, rate, blocked if blocked and blocked > now else None)
        )
    return out


@router.get("")
def queue_page(
    request: Request,
    state: str = "dead",
    kind: str = "",
    before_id: int | None = None,
    viewer: SessionUser = Depends(require("queue.read")),
) -> Response:
    if state not in (*STATES, ALL):
        state = "dead"
    with session_scope(request.app.state.engine, read_only=True) as s:
        counts = q.job_counts(s)
        jobs = q.jobs_page(
            s, state=None if state == ALL else state, kind=kind.strip() or None, limit=50,
            before_id=before_id,
        )  # fmt: skip
        buckets = q.rate_buckets(s)
    kinds = sorted({k for k, _ in counts})
    table = {k: {st: counts.get((k, st), 0) for st in STATES} for k in kinds}
    return render(
        request, "pages/queue.html", nav="queue", table=table, states=STATES, jobs=jobs,
        state=state, kind=kind, budgets=_budgets(request, buckets), done_cap=q.DONE_CAP,
        dead_total=sum(n for (_k, st), n in counts.items() if st == "dead"),
        notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.post("/retry")
def retry(
    request: Request,
    job_id: int | None = Form(None),
    kind: str = Form(""),
    viewer: SessionUser = Depends(require("queue.retry")),
) -> Response:
    """One dead job (``job_id``), or every dead job (of ``kind`` when given)."""
    with session_scope(request.app.state.engine) as s:
        if job_id is not None:
            n = job_queue.retry(s, job_ids=[job_id])
        else:
            n = job_queue.retry(s, kind=kind or None)
        q.add_audit(
            s, actor=viewer.login, action="queue.retry", object_type="job",
            object_id=str(job_id) if job_id is not None else (kind or "*"),
            details={"retried": n},
        )  # fmt: skip
    return RedirectResponse(f"/ui/queue?notice=retried:{n}", status_code=303)
