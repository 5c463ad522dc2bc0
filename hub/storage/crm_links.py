"""The CRM outbox (``crm_links``): what ClientHub created in Bitrix24, and what it is creating.

A row with ``crm_id = PENDING`` is an *intent*: committed before the create is sent, so that a
worker killed between sending and recording leaves a trace, and the next attempt looks the
entity up on ``originId`` instead of creating it again (invariant 2). ``extra`` holds the intent's
owner (worker id) and the job it runs, a claim token, and the ``origin_id`` written into the CRM.
An intent is *busy* while its owner still holds that job's lease (the worker heartbeat renews
it); once the job is finished or its lease has lapsed, another worker takes the intent over.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.models import CrmLink, Job, JobState
from hub.timeutil import utcnow

PENDING = 0  # Bitrix24 ids start at 1


class Claim(StrEnum):
    resolved = "resolved"  # exists in the CRM: crm_id known
    new = "new"  # nobody tried before: create without a lookup
    doubt = "doubt"  # an earlier attempt may have created it: look up first
    busy = "busy"  # another worker is creating it right now: wait


@dataclass(frozen=True)
class Intent:
    kind: str
    key: str
    origin_id: str
    appeal_id: int | None = None
    job_id: int | None = None


@dataclass(frozen=True)
class ClaimResult:
    state: Claim
    crm_id: int | None = None
    origin_id: str | None = None


def get_links(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CrmLink]:
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = session.execute(select(CrmLink).where(CrmLink.key.in_({k for _, k in wanted}))).scalars()
    return {(r.kind, r.key): r for r in rows if (r.kind, r.key) in wanted}


def claim_intents(
    session: Session,
    intents: Iterable[Intent],
    *,
    owner: str,
    now: datetime | None = None,
) -> dict[tuple[str, str], ClaimResult]:
    """Record intents to create, in the caller's (short, committed-at-once) transaction."""
    now = now or utcnow()
    token = uuid.uuid4().hex
    intents = list({(i.kind, i.key): i for i in intents}.values())
    if not intents:
        return {}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for i in intents:
        extra = {
            "owner": owner,
            "claim": token,
            "job_id": i.job_id,
            "at": now.isoformat(),
            "origin_id": i.origin_id,
        }
        stmt = insert(CrmLink).values(
            kind=i.kind,
            key=i.key,
            crm_id=PENDING,
            appeal_id=i.appeal_id,
            extra=extra,
            created_at=now,
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "key"]))
    rows = session.execute(
        select(CrmLink).where(CrmLink.key.in_({i.key for i in intents})).with_for_update()
    ).scalars()
    by_pair = {(r.kind, r.key): r for r in rows}
    live = _live_jobs(session, [r.extra or {} for r in by_pair.values()], owner, now)
    out: dict[tuple[str, str], ClaimResult] = {}
    for i in intents:
        row = by_pair[(i.kind, i.key)]
        extra: dict[str, Any] = dict(row.extra or {})
        origin = str(extra.get("origin_id") or i.origin_id)
        if row.crm_id != PENDING:
            out[(i.kind, i.key)] = ClaimResult(Claim.resolved, row.crm_id, origin)
        elif extra.get("claim") == token:
            out[(i.kind, i.key)] = ClaimResult(Claim.new, None, origin)
        elif extra.get("owner") != owner and (extra.get("owner"), extra.get("job_id")) in live:
            out[(i.kind, i.key)] = ClaimResult(Claim.busy, None, origin)
        else:  # ours from an earlier attempt, or abandoned by a dead worker: take it over
            row.extra = {
                **extra,
                "owner": owner,
                "claim": token,
                "job_id": i.job_id,
                "at": now.isoformat(),
            }
            session.add(row)
            out[(i.kind, i.key)] = ClaimResult(Claim.doubt, None, origin)
    return out


def _live_jobs(
    session: Session, extras: list[dict[str, Any]], owner: str, now: datetime
) -> set[tuple[str, int]]:
    """(worker, job) pairs among other workers' intents whose job lease is still held."""
    job_ids = {int(e["job_id"]) for e in extras if e.get("job_id") and e.get("owner") != owner}
    if not job_ids:
        return set()
    rows = session.execute(
        select(Job.locked_by, Job.id).where(
            Job.id.in_(job_ids), Job.state == JobState.running, Job.locked_until > now
        )
    ).all()
    return {(str(by), int(jid)) for by, jid in rows}


def resolve(
    session: Session,
    *,
    kind: str,
    key: str,
    crm_id: int,
    appeal_id: int | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The entity exists in the CRM with ``crm_id``: the intent becomes a link."""
    row = session.execute(
        select(CrmLink).where(CrmLink.kind == kind, CrmLink.key == key).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        session.add(
            CrmLink(kind=kind, key=key, crm_id=crm_id, appeal_id=appeal_id, extra=extra or {})
        )
        return
    if row.crm_id != PENDING:
        return  # first writer wins; both point at what exists
    row.crm_id = crm_id
    row.appeal_id = appeal_id if appeal_id is not None else row.appeal_id
    row.extra = {**(row.extra or {}), **(extra or {}), "resolved_at": utcnow().isoformat()}
    session.add(row)


def release(session: Session, *, kind: str, key: str, owner: str) -> None:
    """The create definitely failed (the portal answered with an error): drop our intent, so the
    next attempt creates without a lookup."""
    rows = session.execute(
        select(CrmLink).where(CrmLink.kind == kind, CrmLink.key == key, CrmLink.crm_id == PENDING)
    ).scalars()
    for row in rows:
        if (row.extra or {}).get("owner") == owner:
            session.execute(delete(CrmLink).where(CrmLink.id == row.id))


def count_by_kind(session: Session) -> dict[str, int]:
    """Links per kind; intents still unresolved are counted as ``<kind> (pending)``."""
    pending = CrmLink.crm_id == PENDING
    rows = session.execute(
        select(CrmLink.kind, pending, func.count()).group_by(CrmLink.kind, pending)
    ).all()
    return {(f"{kind} (pending)" if is_pending else kind): n for kind, is_pending, n in rows}
