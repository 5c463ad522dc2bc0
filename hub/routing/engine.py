"""Deciding one appeal: filters, region, topic, ordered rules, assignment and CRM target.

``CompiledRuleSet`` is built once per published version and is read-only afterwards, so
worker threads share it. ``decide`` touches no database: what it needs from outside comes
through the ``AssignmentState`` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.routing.assign import Assigner, AssignmentState, AssignOutcome
from hub.routing.conditions import compile_condition
from hub.routing.facts import Facts
from hub.routing.filters import CompiledFilter
from hub.routing.gazetteer import Gazetteer
from hub.routing.index import RuleIndex
from hub.routing.model import Rule, RuleSetModel, TargetSpec
from hub.routing.schedule import zone
from hub.routing.sla_policy import SlaPolicy
from hub.routing.topics import TopicScorer
from hub.routing.types import AppealInput, Assignee, Decision, Target, TraceStep
from hub.timeutil import as_utc

NO_RULE_MATCHED = "Ни одно правило не назначило отдел и ответственного"


class CompiledRule:
    __slots__ = ("id", "title", "checks", "actions", "line", "description")

    def __init__(self, rule: Rule) -> None:
        conditions = sorted((compile_condition(c) for c in rule.conditions), key=lambda c: c.cost)
        self.id = rule.id
        self.title = rule.title
        self.checks = tuple(c.check for c in conditions)
        self.actions = rule.actions
        self.line = rule.where.line
        self.description = "; ".join(c.label for c in conditions) or "без условий"

    def matches(self, facts: Facts, state: Working) -> bool:
        # A plain loop: all() over a generator costs a frame per rule, and this runs a lot.
        for check in self.checks:  # noqa: SIM110
            if not check(facts, state):
                return False
        return True


@dataclass
class Working:
    """The decision in progress; conditions read region and topic from it."""

    region: str | None
    topic: str | None
    moment: datetime
    default_zone: ZoneInfo
    region_zones: dict[str, ZoneInfo]
    department: str | None = None
    pool: str | None = None
    employee: str | None = None
    target: TargetSpec | None = None
    tags: list[str] = field(default_factory=list)
    _local: tuple[str | None, datetime] | None = None

    def local_time(self) -> datetime:
        if self._local is None or self._local[0] != self.region:
            tz = self.region_zones.get(self.region or "", self.default_zone)
            self._local = (self.region, self.moment.astimezone(tz))
        return self._local[1]


class CompiledRuleSet:
    def __init__(self, model: RuleSetModel, *, version: int | None, checksum: str) -> None:
        self.version = version
        self.checksum = checksum
        self.model = model
        self.region_zones = {r.code: zone(r.timezone) for r in model.regions}
        self.default_zone = zone(model.settings.default_timezone)
        self.gazetteer = Gazetteer(model)
        self.topics = TopicScorer(model)
        self.assigner = Assigner(model, {r.code: r.timezone for r in model.regions})
        self.filters = [CompiledFilter(f) for f in model.filters]
        self.departments = {d.code: d for d in model.departments}
        self.topic_titles = {t.code: t.title for t in model.topics}
        self.rules = [CompiledRule(r) for r in model.rules]
        self.index = RuleIndex(model.rules)
        self.rule_count = len(self.rules)
        # Reaction time: first-reply deadlines from sla.yaml, when the directory has one.
        self.sla = (
            SlaPolicy(
                model,
                employee_zones=self.assigner.zones,
                region_zones=self.region_zones,
                default_zone=self.default_zone,
            )
            if model.sla is not None
            else None
        )

    def decide(self, appeal: AppealInput, *, now: datetime, state: AssignmentState) -> Decision:
        now = as_utc(now)
        decision = Decision(rules_version=self.version, rules_checksum=self.checksum)
        trace = decision.trace
        facts = Facts.of(appeal)
        for flt in self.filters:
            hit = flt.match(facts)
            if hit is not None:
                decision.filtered = flt.reason
                decision.tags = ["отфильтровано", flt.id]
                trace.append(TraceStep("filter", hit, rule=flt.id, data={"reason": flt.reason}))
                return decision
        found = self.gazetteer.find(facts)
        trace.append(TraceStep("region", found.message, rule=found.method or None, data=found.data))
        decision.store = found.store.id if found.store else None
        if found.region:
            decision.labels["region"] = self.gazetteer.region_name(found.region)
        if found.store is not None:
            decision.labels["city"] = found.store.city
        topic = self.topics.find(facts)
        if topic.topic:
            decision.labels["topic"] = self.topic_titles.get(topic.topic, topic.topic)
        trace.append(
            TraceStep("topic", topic.message, data={"scores": topic.scores, "words": topic.words})
        )
        moment = as_utc(appeal.received_at) if appeal.received_at else now
        work = Working(found.region, topic.topic, moment, self.default_zone, self.region_zones)
        self._run_rules(facts, work, decision)
        decision.region, decision.topic, decision.tags = work.region, work.topic, work.tags
        if work.topic and work.topic != topic.topic:  # a rule chose it (a menu choice, a form)
            decision.labels["topic"] = self.topic_titles.get(work.topic, work.topic)
        if decision.filtered is not None:
            return decision
        self._assign(work, decision, now, state)
        if self.sla is not None:
            self.sla.apply(decision, appeal, moment)
        return decision

    def _run_rules(self, facts: Facts, work: Working, decision: Decision) -> None:
        """Candidate rules in file order; a rule that changes region or topic re-selects
        the region- and topic-filed candidates after it."""
        rules, index = self.rules, self.index
        static = index.static(facts)
        candidates = sorted(static | index.dynamic(work.region, work.topic))
        i = 0
        while i < len(candidates):
            position = candidates[i]
            rule = rules[position]
            i += 1
            if not rule.matches(facts, work):
                continue
            before = (work.region, work.topic)
            if self._apply(rule, work, decision) or decision.filtered is not None:
                return
            if (work.region, work.topic) != before:
                rest = static | index.dynamic(work.region, work.topic)
                candidates = candidates[:i] + sorted(p for p in rest if p > position)

    def _apply(self, rule: CompiledRule, work: Working, decision: Decision) -> bool:
        a = rule.actions
        did: list[str] = []
        if a.filter:
            decision.filtered = a.filter
            did.append(f"отфильтровать: {a.filter}")
        if a.topic:
            work.topic = a.topic
            did.append(f"тема {a.topic}")
        if a.region:
            work.region = a.region
            did.append(f"регион {a.region}")
        if a.department:
            work.department = a.department
            did.append(f"отдел {a.department}")
        if a.assign_pool:
            work.pool, work.employee = a.assign_pool, None
            did.append(f"назначить из пула {a.assign_pool}")
        if a.assign_employee:
            work.employee, work.pool = a.assign_employee, None
            did.append(f"назначить {a.assign_employee}")
        if a.target:
            work.target = a.target
            did.append(f"Битрикс24: {_target_text(a.target)}")
        for tag in a.tags:
            if tag not in work.tags:
                work.tags.append(tag)
        if a.tags:
            did.append("теги " + ", ".join(a.tags))
        if a.stop:
            did.append("стоп")
        message = f"Правило «{rule.title}» сработало ({rule.description}): {', '.join(did)}."
        decision.trace.append(TraceStep("rule", message, rule=rule.id, data={"line": rule.line}))
        return a.stop

    def _assign(
        self, work: Working, decision: Decision, now: datetime, state: AssignmentState
    ) -> None:
        settings = self.model.settings
        if not (work.pool or work.employee or work.department):
            missing = [w for w, v in (("регион", work.region), ("тема", work.topic)) if v is None]
            why = f" (не определены: {', '.join(missing)})" if missing else ""
            decision.trace.append(
                TraceStep(
                    "fallback",
                    f"{NO_RULE_MATCHED}{why}: обращение уходит в резервную очередь.",
                    data={"missing": missing},
                )
            )
            work.department = settings.fallback_department or None
            work.employee = settings.fallback_employee
            work.target = work.target or settings.fallback_target
        outcome = self._outcome(work, now, state)
        emp = outcome.employee
        decision.department = work.department or outcome.department
        if emp is not None:
            decision.assignee = Assignee(emp.id, emp.name, emp.bitrix_user_id)
        step_rule = (
            work.pool or work.employee or (f"отдел:{work.department}" if work.department else None)
        )
        decision.trace.append(
            TraceStep("assign", outcome.message, rule=step_rule, data=outcome.data)
        )
        target, source = work.target, "правило"
        if target is None and decision.department in self.departments:
            target, source = self.departments[decision.department].target, "отдел"
        if target is None:
            target, source = settings.fallback_target, "резерв"
        decision.target = (
            Target(target.entity, target.pipeline, target.stage) if target else Target()
        )
        decision.trace.append(
            TraceStep("target", f"Битрикс24: {_target_text(decision.target)} (задано: {source}).")
        )

    def _outcome(self, work: Working, now: datetime, state: AssignmentState) -> AssignOutcome:
        a = self.assigner
        if work.pool:
            pools = a.chain(work.pool)
        elif work.employee:
            pools = [a.pool_for_employee(work.employee)]
        else:
            pools = [a.pool_for_department(work.department or "")]
        return a.assign(pools, region=work.region, topic=work.topic, now=now, state=state)


def _target_text(target: TargetSpec | Target) -> str:
    if target.entity == "lead":
        return f"лид, статус {target.stage or 'по умолчанию'}"
    return f"сделка, воронка {target.pipeline or 0}, стадия {target.stage or 'первая'}"
