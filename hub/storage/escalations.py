"""SQL of reaction time: the deadline on an appeal, the escalation sweep, absences.

The sweep reads one index (``next_escalation_at``): an appeal with a step due is picked once,
its due steps are queued and its pointer moves past them in the same transaction. Answered or
closed appeals met there get the pointer cleared, so the index range the sweep scans stays
the size of what is still open.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlmodel import Session

from hub.models import Appeal, AppealState
from hub.routing.types import Decision

OPEN_STATES = (AppealState.routed.value, AppealState.delivered.value)


def apply_sla(appeal: Appeal, decision: Decision) -> None:
    """Copy the deadline and escalation plan of a (re-)routing onto the appeal. Steps already
    queued before a re-route keep their job keys, so they are not run twice."""
    plan = list(decision.escalation_plan)
    appeal.reply_due_at = _moment(decision.reply_due_at)
    appeal.sla_target_minutes = decision.sla_target_minutes
    appeal.sla_rule = decision.sla_rule
    appeal.escalation_plan = plan
    appeal.escalation_step = 0
    appeal.next_escalation_at = _moment(plan[0]["at"]) if plan else None


@dataclass(frozen=True)
class DueAppeal:
    id: int
    step: int
    plan: list[dict[str, Any]]


def clear_settled(session: Session, now: datetime) -> int:
    """Answered or closed appeals need no more steps: drop them from the sweep's index."""
    result = session.execute(
        update(Appeal)
        .where(Appeal.next_escalation_at <= now)
        .where(or_(Appeal.first_reply_at.is_not(None), Appeal.state.not_in(OPEN_STATES)))
        .values(next_escalation_at=None)
    )
    return int(result.rowcount or 0)


def due(session: Session, now: datetime, *, limit: int = 500) -> list[DueAppeal]:
    """Open, unanswered appeals with a step due, oldest first; rows locked on PostgreSQL."""
    q = (
        select(Appeal.id, Appeal.escalation_step, Appeal.escalation_plan)
        .where(Appeal.next_escalation_at <= now)
        .where(Appeal.first_reply_at.is_(None))
        .where(Appeal.state.in_(OPEN_STATES))
        .order_by(Appeal.next_escalation_at, Appeal.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return [DueAppeal(int(i), int(step), list(plan or [])) for i, step, plan in session.execute(q)]


def advance(session: Session, *, appeal_id: int, step: int, next_at: datetime | None) -> None:
    session.execute(
        update(Appeal)
        .where(Appeal.id == appeal_id)
        .values(escalation_step=step, next_escalation_at=next_at)
    )


def open_for(session: Session, employee_ids: Collection[str]) -> list[tuple[int, str]]:
    """(appeal id, assignee) of unanswered appeals still waiting on these employees."""
    if not employee_ids:
        return []
    q = (
        select(Appeal.id, Appeal.assignee_id)
        .where(Appeal.assignee_id.in_(list(employee_ids)))
        .where(Appeal.state.in_(OPEN_STATES))
        .where(Appeal.first_reply_at.is_(None))
        .order_by(Appeal.id)
    )
    return [(int(i), str(a)) for i, a in session.execute(q)]


def append_trace(appeal: Appeal, step: str, message: str, *, rule: str | None, data: Any) -> None:
    """A new list, so the JSON column is seen as changed."""
    entry = {"step": step, "rule": rule, "message": message, "data": data}
    appeal.trace = [*appeal.trace, entry]


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
