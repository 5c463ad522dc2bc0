""" "Test the draft": what would change if the draft had been in force for the latest appeals.

Both the version in force and the draft decide every appeal again, each at the moment the
appeal arrived (so hours, absences and time conditions apply as they did then), each with its
own in-memory assignment state seeded from today's open-appeal counts. Comparing the two
simulations, not the draft against what was stored, shows the draft's effect alone: stored
decisions also carry the round-robin turns and loads of their day and of older versions.
Nothing is written: no cursor moves, no appeal changes. Appeals are fed one at a time
(:class:`Comparer`), so that the caller can read them in chunks and report progress
(hub/ui/draft_runs.py).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from hub.pipeline import appeal_input
from hub.routing.assign import MemoryAssignmentState
from hub.routing.engine import CompiledRuleSet
from hub.routing.model import RuleSetModel
from hub.routing.types import AppealInput, Decision
from hub.storage.assignment import DbAssignmentState
from hub.storage.routing_sample import SampleAppeal
from hub.timeutil import utcnow

CHANGED_SHOWN = 200


@dataclass
class Change:
    appeal: SampleAppeal
    before: Decision
    after: Decision
    fields: list[str]


@dataclass
class Comparison:
    total: int = 0
    changed: int = 0
    departments: list[tuple[str, int, int]] = field(default_factory=list)  # (code, before, after)
    assignees: list[tuple[str, int, int]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    field_counts: Counter[str] = field(default_factory=Counter)


def _summary(d: Decision) -> dict[str, Any]:
    return {
        "filtered": d.filtered,
        "topic": d.topic,
        "region": d.region,
        "department": d.department,
        "assignee": d.assignee.id if d.assignee else None,
        "target": (d.target.entity, d.target.pipeline, d.target.stage) if d.target else None,
    }


def _table(before: Counter[str], after: Counter[str]) -> list[tuple[str, int, int]]:
    rows = [(k, before[k], after[k]) for k in set(before) | set(after) if before[k] != after[k]]
    rows.sort(key=lambda r: (-abs(r[2] - r[1]), r[0]))
    return rows


class Comparer:
    """Feed appeals oldest first (as they arrived: round-robin turns and loads depend on the
    order); :meth:`finish` gives the counts and the newest changed appeals, newest first."""

    def __init__(
        self, current: CompiledRuleSet, draft: CompiledRuleSet, open_counts: dict[str, int]
    ) -> None:
        self.rulesets = (current, draft)
        self.states = (
            MemoryAssignmentState(counts=dict(open_counts)),
            MemoryAssignmentState(counts=dict(open_counts)),
        )
        self.departments: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.assignees: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.shown: deque[Change] = deque(maxlen=CHANGED_SHOWN)
        self.result = Comparison()

    def add(self, appeal: SampleAppeal) -> None:
        item = appeal_input(appeal)
        moment = appeal.received_at or utcnow()
        before, after = (
            ruleset.decide(item, now=moment, state=state)
            for ruleset, state in zip(self.rulesets, self.states, strict=True)
        )
        for i, decision in enumerate((before, after)):
            self.departments[i][decision.department or "—"] += 1
            self.assignees[i][_who(decision)] += 1
        a, b = _summary(before), _summary(after)
        differing = [k for k in a if a[k] != b[k]]
        self.result.total += 1
        if differing:
            self.result.changed += 1
            self.result.field_counts.update(differing)
            self.shown.append(Change(appeal, before, after, differing))

    def finish(self) -> Comparison:
        self.result.departments = _table(*self.departments)
        self.result.assignees = _table(*self.assignees)
        self.result.changes = list(reversed(self.shown))  # newest first, like every UI list
        return self.result


def _who(d: Decision) -> str:
    return f"{d.assignee.name} ({d.assignee.id})" if d.assignee else "—"


def open_counts(session: Session, model: RuleSetModel) -> dict[str, int]:
    """Today's open appeals per employee of ``model``: the load both simulations start from."""
    state = DbAssignmentState(session, record=False)
    return dict(state.open_counts([e.id for e in model.employees]))


def route_text(
    ruleset: CompiledRuleSet, appeal: AppealInput, open_counts: dict[str, int]
) -> Decision:
    """The "try a text" box: one decision, now, touching nothing."""
    state = MemoryAssignmentState(counts=dict(open_counts))
    return ruleset.decide(appeal, now=appeal.received_at or utcnow(), state=state)
