"""Escalation when a first reply is late, and reassignment when the responsible is absent.

Two sweeps run on the scheduler leader (``sweep_all``, registered in ``hub/pollers.py``):
- ``sweep`` queues one ``escalate.appeal`` job per due step of the plan fixed at routing
  (job key ``escalate:{appeal}:{step}``, so a step is queued once whatever runs twice);
- ``absence_sweep`` queues a ``reassign.absent`` job for every unanswered appeal whose
  responsible is absent today by the published directory (``absent:{appeal}:{who}:{from}``).
A job reads first, makes its Bitrix24 calls, then writes the appeal and its trace in the job's
transaction. Up to ``BATCH_JOBS`` due steps run together and their calls share ``batch``
requests; round-robin turns and loads taken by one of them are seen by the next
(``TurnMemory``), and a second step of an appeal another one hands over waits for that commit.
An appeal answered before its job runs is left alone, with a line in the trace.
"Now" comes from a clock the handlers and sweeps are given, so tests drive a simulated week.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from hub import queue
from hub.bitrix24.batch import MAX_COMMANDS, Batch, BatchResult
from hub.bitrix24.client import Bitrix24Client, WebhookAuth
from hub.bitrix24.errors import AuthError, Bitrix24Error
from hub.db import session_scope
from hub.escalation_steps import (
    Effect,
    TurnMemory,
    about,
    appeal_link,
    head_of,
    is_open,
    local_text,
    notify,
    overdue_stage,
    reassign,
)
from hub.jobs import BACKGROUND, JobContext, JobHandler
from hub.models import Appeal, PoolCursor
from hub.routing import service as routing
from hub.routing.engine import CompiledRuleSet
from hub.routing.sla import ACTIONS
from hub.settings import get_settings
from hub.storage import escalations as store
from hub.storage import rulesets
from hub.timeutil import as_utc, utcnow

ESCALATE_JOB = "escalate.appeal"
ABSENCE_JOB = "reassign.absent"
SWEEP_SECONDS = 30.0
BATCH_JOBS = 20  # steps decided and sent together (their calls share ``batch`` requests)
CLIENT_ID = "clienthub"  # namespaces notification tags sent through an inbound webhook

log = logging.getLogger("clienthub.escalation")
Clock = Callable[[], datetime]
ClientFor = Callable[[Engine], Bitrix24Client | None]


# -- sweeps (scheduler leader) -----------------------------------------------------------------
def sweep(engine: Engine, *, now: datetime | None = None) -> int:
    """Queue every escalation step due by ``now``; returns how many jobs were added."""
    now = as_utc(now or utcnow())
    added = 0
    with session_scope(engine) as s:
        store.clear_settled(s, now)
        for row in store.due(s, now):
            step = row.step
            while step < len(row.plan) and _at(row.plan[step]) <= now:
                payload = {"appeal_id": row.id, "step": step, **row.plan[step]}
                key = f"escalate:{row.id}:{step}"
                added += queue.enqueue(s, ESCALATE_JOB, key, payload, appeal_id=row.id)
                step += 1
            following = _at(row.plan[step]) if step < len(row.plan) else None
            store.advance(s, appeal_id=row.id, step=step, next_at=following)
    return added


def absent_today(ruleset: CompiledRuleSet, now: datetime) -> dict[str, date]:
    """Employees absent on their own local date ``now``, with the first day of the absence."""
    out: dict[str, date] = {}
    for emp in ruleset.model.employees:
        zone = ruleset.assigner.zones.get(emp.id, ruleset.default_zone)
        today = now.astimezone(zone).date()
        for start, end in emp.absences:
            if start <= today <= end:
                out[emp.id] = start
    return out


def absence_sweep(engine: Engine, *, now: datetime | None = None) -> int:
    """Queue a reassignment of every unanswered appeal whose responsible is absent now."""
    now = as_utc(now or utcnow())
    with session_scope(engine, read_only=True) as s:
        version = rulesets.published_id(s)
        if version is None:
            return 0
        absent = absent_today(routing.compiled(s, version), now)
    if not absent:
        return 0
    added = 0
    with session_scope(engine) as s:
        for appeal_id, who in store.open_for(s, absent):
            key = f"absent:{appeal_id}:{who}:{absent[who].isoformat()}"
            payload = {"appeal_id": appeal_id, "employee_id": who}
            added += queue.enqueue(s, ABSENCE_JOB, key, payload, appeal_id=appeal_id)
    return added


def sweep_all(engine: Engine) -> None:
    """The periodic task: both sweeps, each in its own transaction."""
    queued = sweep(engine)
    moved = absence_sweep(engine)
    if queued or moved:
        log.info("escalation sweep", extra={"escalations": queued, "absences": moved})


# -- jobs --------------------------------------------------------------------------------------
_clients: dict[int, Bitrix24Client] = {}
_lock = threading.Lock()


def default_client(engine: Engine) -> Bitrix24Client | None:
    """The portal client, or None when no portal is configured (the steps are then only
    recorded). One per engine and process, like delivery's."""
    from hub.bitrix24.factory import NotConfigured, client_from_settings
    from hub.pipeline import delivery_configured

    if not delivery_configured():
        return None
    with _lock:
        client = _clients.get(id(engine))
        if client is None:
            try:
                client = _clients[id(engine)] = client_from_settings(get_settings(), engine)
            except NotConfigured:
                return None
        return client


def make_handlers(
    client_for: ClientFor = default_client,
    clock: Clock = utcnow,
    public_url: str | None = None,
) -> list[JobHandler]:
    def run(ctx: JobContext) -> None:
        url = public_url if public_url is not None else get_settings().effective_public_url()
        now, memory = clock(), TurnMemory()
        planned: list[Planned] = []
        handed: dict[int, dict[str, Any]] = {}  # appeal -> what a step earlier in the batch sets
        for job in ctx.jobs:
            plan = _plan(ctx, job, now, url, memory, handed)
            if plan is not None:
                planned.append(plan)
        outcomes = _call_all(ctx, client_for, planned)
        unwritten: set[int] = set()  # appeals whose handover was not written after all
        for plan in planned:
            appeal_id = plan.appeal.id or 0
            if plan.after_handover and appeal_id in unwritten:
                ctx.fail(plan.job, "предыдущий шаг этого обращения не записан", retry=True)
            elif plan.job.id in outcomes:
                _apply(ctx, plan, outcomes[plan.job.id], now)
                continue
            if plan.effect.updates:
                unwritten.add(appeal_id)

    return [
        JobHandler(ESCALATE_JOB, run, batch_size=BATCH_JOBS, priority=BACKGROUND),
        JobHandler(ABSENCE_JOB, run, batch_size=BATCH_JOBS, priority=BACKGROUND),
    ]


@dataclass
class Planned:
    job: Any
    step: str
    effect: Effect
    appeal: Appeal  # as the step saw it (after an earlier step's handover in the batch)
    after_handover: bool = False


def _plan(
    ctx: JobContext,
    job: Any,
    now: datetime,
    url: str,
    memory: TurnMemory,
    handed: dict[int, dict[str, Any]],
) -> Planned | None:
    """Decide one step from what is committed, as the steps before it in this batch leave it:
    their round-robin turns (``memory``) and their handovers (``handed``), as if each had
    committed before the next began."""
    payload = job.payload
    appeal_id = int(payload["appeal_id"])
    with ctx.read() as s:
        appeal = s.get(Appeal, appeal_id)
        if appeal is None:
            ctx.fail(job, f"appeal {appeal_id} not found", retry=False)
            return None
        after_handover = appeal_id in handed
        if after_handover:
            s.expunge(appeal)  # a private copy: the earlier step's handover applied to it
            for name, value in handed[appeal_id].items():
                setattr(appeal, name, value)
        version = rulesets.published_id(s) or appeal.rules_version
        ruleset = routing.compiled(s, version) if version else None
        if job.kind == ESCALATE_JOB:
            step, effect = _escalation(ruleset, appeal, payload, s, now, url, memory)
        else:
            step, effect = _absence(ruleset, appeal, payload, s, now, url, memory)
    if effect is None:
        return None
    if effect.wait:
        ctx.fail(job, effect.wait, retry=True)
        return None
    if effect.updates:
        handed[appeal_id] = {**handed.get(appeal_id, {}), **effect.updates}
    return Planned(job, step, effect, appeal, after_handover)


def _apply(ctx: JobContext, plan: Planned, outcomes: list[str], now: datetime) -> None:
    """Write the step on the appeal and its trace, in the job's transaction."""
    effect, appeal = plan.effect, plan.appeal
    session = ctx.session
    row = session.get(Appeal, appeal.id)
    assert row is not None
    if effect.updates and row.assignee_id != appeal.assignee_id:
        effect.message += " Ответственного уже сменили — изменение не записано."
        effect.updates = {}
    for name, value in effect.updates.items():
        setattr(row, name, value)
    for key, employee in effect.cursors.items():
        cursor = session.get(PoolCursor, key) or PoolCursor(pool=key)
        cursor.last_employee_id, cursor.updated_at = employee, now
        session.add(cursor)
    message = effect.message + (f" Битрикс24: {'; '.join(outcomes)}." if outcomes else "")
    store.append_trace(
        row, plan.step, message, rule=plan.job.payload.get("label"), data=effect.data
    )
    session.add(row)


def _call_all(
    ctx: JobContext, client_for: ClientFor, planned: list[Planned]
) -> dict[int, list[str]]:
    """Every step's calls in as few ``batch`` requests as fit: a wave of escalations at the
    start of a working day costs the portal's rate limit a request per ~20 steps, not one per
    notification. The outcome of each step's calls, by job id; a job left out was failed."""
    out: dict[int, list[str]] = {p.job.id: [] for p in planned if not p.effect.calls}
    calling = [p for p in planned if p.effect.calls]
    if not calling:
        return out
    client = client_for(ctx.engine)
    if client is None:
        out.update({p.job.id: ["не подключён, в портал ничего не отправлено"] for p in calling})
        return out
    for chunk in _chunks(calling):
        out.update(_call_chunk(ctx, client, chunk))
    return out


def _chunks(planned: list[Planned]) -> list[list[Planned]]:
    """Whole steps per batch request, at most ``MAX_COMMANDS`` calls each."""
    chunks: list[list[Planned]] = [[]]
    size = 0
    for plan in planned:
        n = len(plan.effect.calls)
        if chunks[-1] and size + n > MAX_COMMANDS:
            chunks.append([])
            size = 0
        chunks[-1].append(plan)
        size += n
    return chunks


def _call_chunk(
    ctx: JobContext, client: Bitrix24Client, chunk: list[Planned]
) -> dict[int, list[str]]:
    batch = Batch()
    for plan in chunk:
        for i, call in enumerate(plan.effect.calls):
            params = dict(call.params)
            if call.method == "im.notify.system.add" and isinstance(client.auth, WebhookAuth):
                params["CLIENT_ID"] = CLIENT_ID  # docs: tags through a webhook need CLIENT_ID
            batch.add(f"s{plan.job.id}_{i}", call.method, params)
    try:  # every call is safe to repeat (module docstring of hub/escalation_steps.py)
        result = client.batch(batch, safe=True)
    except AuthError as exc:  # a human must fix the portal access: dead, retryable
        for plan in chunk:
            ctx.fail(plan.job, str(exc), retry=False)
        return {}
    except Bitrix24Error as exc:
        if exc.transient:
            for plan in chunk:
                ctx.fail(plan.job, str(exc), retry=True)
            return {}
        failed = f"ошибка: {exc.code or exc.description}"
        return {p.job.id: [f"{c.what} — {failed}" for c in p.effect.calls] for p in chunk}
    out: dict[int, list[str]] = {}
    for plan in chunk:
        done = _outcomes(ctx, plan, result)
        if done is not None:
            out[plan.job.id] = done
    return out


def _outcomes(ctx: JobContext, plan: Planned, result: BatchResult) -> list[str] | None:
    """One step's calls as the trace tells them; None when the job must be retried or
    dead-lettered."""
    done: list[str] = []
    for i, call in enumerate(plan.effect.calls):
        key = f"s{plan.job.id}_{i}"
        error = result.errors.get(key)
        if isinstance(error, AuthError):
            ctx.fail(plan.job, str(error), retry=False)
            return None
        if error is not None and error.transient:
            ctx.fail(plan.job, str(error), retry=True)
            return None
        if error is not None:
            done.append(f"{call.what} — ошибка: {error.code or error.description}")
        elif call.method == "im.notify.system.add" and not result.get(key):
            done.append(f"{call.what} — портал не создал уведомление")
        else:
            done.append(f"{call.what} — готово")
    return done


def _escalation(
    ruleset: CompiledRuleSet | None,
    appeal: Appeal,
    payload: dict[str, Any],
    session: Any,
    now: datetime,
    url: str,
    memory: TurnMemory | None = None,
) -> tuple[str, Effect | None]:
    action = str(payload.get("do", ""))
    label = str(payload.get("label") or ACTIONS.get(action, action))
    why = f"Эскалация ({label})"
    if not is_open(appeal):
        if appeal.first_reply_at is not None:
            answered = local_text(ruleset, appeal, as_utc(appeal.first_reply_at)) if ruleset else ""
            return "escalation", Effect(f"{why} не понадобилась: первый ответ дан {answered}.")
        return "escalation", Effect(f"{why} не понадобилась: обращение в состоянии {appeal.state}.")
    if ruleset is None:
        return "escalation", Effect(f"{why}: нет правил маршрутизации — шаг пропущен.")
    tag = f"clienthub|escalate|{appeal.id}|{payload.get('step')}"
    due = local_text(ruleset, appeal, as_utc(appeal.reply_due_at) if appeal.reply_due_at else None)
    link, subject = appeal_link(url, appeal), about(appeal)
    who = appeal.assignee_name or appeal.assignee_id or "никто"
    if action == "notify_assignee":
        text = f"ClientHub: {link} ({subject}) ждёт первого ответа клиенту. Срок — {due}."
        call = notify(appeal.bitrix_user_id, text, tag, appeal.id or 0, who)
        effect = Effect(f"{why}: напоминание ответственному {who}.", [call] if call else [])
    elif action == "notify_head":
        head, head_user = head_of(ruleset, appeal.department)
        text = (
            f"ClientHub: {link} ({subject}) — первый ответ клиенту не дан в срок ({due}). "
            f"Ответственный — {who}."
        )
        call = notify(head_user, text, tag, appeal.id or 0, head or "руководителю")
        target = f"руководителю отдела {head}" if head else "руководителю: у отдела его нет"
        effect = Effect(f"{why}: извещение {target}.", [call] if call else [])
    elif action == "reassign":
        effect = reassign(
            ruleset, appeal, session, now, why=f"{why}: {who} не ответил(а) в срок", tag=tag,
            public_url=url, memory=memory,
        )  # fmt: skip
    elif action == "overdue_stage":
        effect = overdue_stage(ruleset, appeal, f"{why}: перевод в стадию просроченных")
    else:
        effect = Effect(f"{why}: неизвестное действие «{action}» — пропущено.")
    effect.data = {
        **effect.data,
        "do": action,
        "at": payload.get("at"),
        "step": payload.get("step"),
    }
    return "escalation", effect


def _absence(
    ruleset: CompiledRuleSet | None,
    appeal: Appeal,
    payload: dict[str, Any],
    session: Any,
    now: datetime,
    url: str,
    memory: TurnMemory | None = None,
) -> tuple[str, Effect | None]:
    who = str(payload.get("employee_id"))
    if ruleset is None or appeal.assignee_id != who or not is_open(appeal):
        return "absence", None  # answered or already moved: nothing to do, nothing to say
    emp = ruleset.assigner.employees.get(who)
    name = emp.name if emp else who
    today = now.astimezone(ruleset.assigner.zones.get(who, ruleset.default_zone)).date()
    spans = [(s, e) for s, e in (emp.absences if emp else []) if s <= today <= e]
    span = f"{spans[0][0]:%d.%m}–{spans[0][1]:%d.%m}" if spans else ""
    tag = f"clienthub|absent|{appeal.id}|{who}"
    why = f"Ответственный {name} отсутствует{f' ({span})' if span else ''}"
    effect = reassign(
        ruleset, appeal, session, now, why=why, tag=tag, public_url=url, memory=memory
    )
    effect.data = {**effect.data, "absent": who}
    return "absence", effect


def _at(step: dict[str, Any]) -> datetime:
    return as_utc(datetime.fromisoformat(str(step["at"])))


HANDLERS = make_handlers()
