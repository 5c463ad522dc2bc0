"""What one escalation step or absence reassignment does, decided before anything is sent.

``prepare`` reads the appeal and the rule set and returns an ``Effect``: the Bitrix24 calls to
make, the appeal fields to change and the Russian sentence for the trace. The job handler
(``hub.escalation``) then makes the calls outside any write transaction and commits the rest.
Every call is safe to repeat: ``crm.item.update`` sets a value, and a notification carries a
``TAG`` unique to the appeal and step, which the portal keeps only once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from hub.bitrix24.plan import ENTITY_TYPE_IDS
from hub.models import Appeal
from hub.routing.assign import AssignOutcome
from hub.routing.engine import CompiledRuleSet
from hub.routing.model import Pool
from hub.routing.schedule import DAY_LABELS
from hub.storage.assignment import DbAssignmentState
from hub.storage.escalations import OPEN_STATES


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    what: str  # for the trace: «уведомление Петрову», «сделка 45 → C1:UC_OVERDUE»


@dataclass
class Effect:
    message: str  # the trace sentence (Bitrix24 outcomes are appended after the calls)
    calls: list[Call] = field(default_factory=list)
    updates: dict[str, Any] = field(default_factory=dict)  # appeal columns to set
    cursors: dict[str, str] = field(default_factory=dict)  # round-robin moves to record
    wait: str | None = None  # not yet possible (no deal yet): retry the job later
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnMemory:
    """Turns and loads taken by earlier steps of the same job batch, not yet committed."""

    moves: dict[str, str] = field(default_factory=dict)  # pool -> last employee given a turn
    load: Counter[str] = field(default_factory=Counter)  # employee -> open appeals gained


class RecordingState(DbAssignmentState):
    """Reads like the routing state but keeps round-robin moves for the write transaction,
    so choosing a replacement never takes the SQLite write lock before the HTTP calls. A shared
    ``TurnMemory`` lets the steps of one batch continue each other's turns."""

    def __init__(self, session: Session, memory: TurnMemory | None = None) -> None:
        super().__init__(session, record=False)
        self.moves: dict[str, str] = {}
        self.memory = memory if memory is not None else TurnMemory()

    def last_assigned(self, pool_key: str) -> str | None:
        if pool_key in self.memory.moves:
            return self.memory.moves[pool_key]
        return super().last_assigned(pool_key)

    def advance(self, pool_key: str, employee_id: str) -> None:
        self.moves[pool_key] = self.memory.moves[pool_key] = employee_id

    def open_counts(self, employee_ids: Collection[str]) -> Mapping[str, int]:
        counts = dict(super().open_counts(employee_ids))
        return {k: n + self.memory.load.get(k, 0) for k, n in counts.items()}

    def assigned(self, employee_id: str) -> None:
        self.memory.load[employee_id] += 1


def is_open(appeal: Appeal) -> bool:
    return appeal.first_reply_at is None and appeal.state in OPEN_STATES


def local_text(ruleset: CompiledRuleSet, appeal: Appeal, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    zone = ruleset.assigner.zones.get(appeal.assignee_id or "", ruleset.default_zone)
    local = moment.astimezone(zone)
    return f"{DAY_LABELS[local.weekday()]} {local:%d.%m %H:%M} ({zone.key})"


def appeal_link(public_url: str, appeal: Appeal) -> str:
    return f"[URL={public_url}/ui/appeals/{appeal.id}]обращение №{appeal.id}[/URL]"


def about(appeal: Appeal) -> str:
    labels = appeal.labels or {}
    parts = [labels.get("topic") or appeal.topic, labels.get("region") or appeal.region]
    return ", ".join(p for p in parts if p) or appeal.channel


def notify(user_id: int | None, message: str, tag: str, appeal_id: int, who: str) -> Call | None:
    if not user_id:
        return None
    params = {
        "USER_ID": user_id,
        "MESSAGE": message,
        "TAG": tag,
        "SUB_TAG": f"clienthub|appeal|{appeal_id}",
    }
    return Call("im.notify.system.add", params, f"уведомление {who}")


def head_of(ruleset: CompiledRuleSet, department: str | None) -> tuple[str, int | None]:
    dept = ruleset.departments.get(department or "")
    head = ruleset.assigner.employees.get(dept.head) if dept and dept.head else None
    if head is None:
        return "", None
    return head.name, head.bitrix_user_id


def pools_of(ruleset: CompiledRuleSet, appeal: Appeal) -> list[Pool]:
    """The pools the appeal was assigned from, read off the ``assign`` step of its trace:
    a pool code (and its fallbacks), ``сотрудник:ID``, ``отдел:CODE`` or the fallback's id."""
    a = ruleset.assigner
    rule = next((t.get("rule") for t in reversed(appeal.trace) if t.get("step") == "assign"), None)
    rule = rule or ""
    if rule in a.pools:
        return a.chain(rule)
    if rule.startswith("отдел:"):
        return [a.pool_for_department(rule.split(":", 1)[1])]
    employee = rule.split(":", 1)[1] if rule.startswith("сотрудник:") else rule
    if employee in a.employees:
        return [a.pool_for_employee(employee)]
    return [a.pool_for_department(appeal.department or "")]


def replacement(
    ruleset: CompiledRuleSet,
    appeal: Appeal,
    session: Session,
    now: datetime,
    memory: TurnMemory | None = None,
) -> tuple[AssignOutcome, dict[str, str]]:
    """The next one by the pool's strategy, never the current responsible."""
    state = RecordingState(session, memory)
    outcome = ruleset.assigner.assign(
        pools_of(ruleset, appeal),
        region=appeal.region,
        topic=appeal.topic,
        now=now,
        state=state,
        exclude={appeal.assignee_id} if appeal.assignee_id else set(),
    )
    return outcome, state.moves


def reassign(
    ruleset: CompiledRuleSet,
    appeal: Appeal,
    session: Session,
    now: datetime,
    *,
    why: str,
    tag: str,
    public_url: str,
    memory: TurnMemory | None = None,
) -> Effect:
    """Hand the appeal to the next one of its pool: in ClientHub, on the deal, with a note."""
    outcome, moves = replacement(ruleset, appeal, session, now, memory)
    emp = outcome.employee
    before = appeal.assignee_name or appeal.assignee_id or "никто"
    if emp is None or emp.id == appeal.assignee_id:
        return Effect(f"{why}: передать некому — {outcome.message}", data={"outcome": "none"})
    if memory is not None and appeal.assignee_id:
        memory.load[appeal.assignee_id] -= 1  # the one it leaves has one appeal fewer
    effect = Effect(
        f"{why}: передано от {before} к {emp.name} ({emp.id}). {outcome.message}",
        updates={
            "assignee_id": emp.id,
            "assignee_name": emp.name,
            "bitrix_user_id": emp.bitrix_user_id,
            "department": appeal.department or outcome.department,
        },
        cursors=moves,
        data={"from": appeal.assignee_id, "to": emp.id, "pool": outcome.data.get("pool")},
    )
    if appeal.crm_entity_id and emp.bitrix_user_id:
        effect.calls.append(
            Call(
                "crm.item.update",
                {
                    "entityTypeId": ENTITY_TYPE_IDS.get(appeal.crm_entity or "deal", 2),
                    "id": appeal.crm_entity_id,
                    "fields": {"assignedById": emp.bitrix_user_id},
                },
                f"ответственный в {'лиде' if appeal.crm_entity == 'lead' else 'сделке'} "
                f"{appeal.crm_entity_id}",
            )
        )
    due = local_text(ruleset, appeal, appeal.reply_due_at)
    text = (
        f"ClientHub: вам передано {appeal_link(public_url, appeal)} ({about(appeal)}): "
        f"{why.lower()}. Срок первого ответа — {due}."
    )
    call = notify(emp.bitrix_user_id, text, tag, appeal.id or 0, emp.name)
    if call:
        effect.calls.append(call)
    return effect


def overdue_stage(ruleset: CompiledRuleSet, appeal: Appeal, why: str) -> Effect:
    sla = ruleset.model.sla
    stages = sla.overdue_stages if sla else {}
    entity = appeal.crm_entity or appeal.target.get("entity") or "deal"
    key = "lead" if entity == "lead" else str(appeal.target.get("pipeline") or 0)
    stage = stages.get(key)
    if not stage:
        return Effect(
            f"{why}: для {'лидов' if key == 'lead' else f'воронки {key}'} стадия не задана"
        )
    if not appeal.crm_entity_id:
        if appeal.delivery_state == "pending":
            return Effect(why, wait="обращение ещё не в Битрикс24: стадию сменить не на чем")
        return Effect(f"{why}: обращения нет в Битрикс24 — стадию не сменить")
    call = Call(
        "crm.item.update",
        {
            "entityTypeId": ENTITY_TYPE_IDS.get(entity, 2),
            "id": appeal.crm_entity_id,
            "fields": {"stageId": stage},
        },
        f"{'лид' if entity == 'lead' else 'сделка'} {appeal.crm_entity_id} → {stage}",
    )
    return Effect(why, calls=[call], data={"stage": stage})
