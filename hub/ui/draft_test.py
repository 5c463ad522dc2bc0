""" "Test the draft": what would change if the draft had been in force for the latest appeals.

Both the version in force and the draft decide every appeal again, each at the moment the
appeal arrived (so hours, absences and time conditions apply as they did then), each with its
own in-memory assignment state seeded from today's open-appeal counts. Comparing the two
simulations, not the draft against what was stored, shows the draft's effect alone: stored
decisions also carry the round-robin turns and loads of their day and of older versions.
Nothing is written: no cursor moves, no appeal changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hub.models import Appeal
from hub.pipeline import appeal_input
from hub.routing.assign import MemoryAssignmentState
from hub.routing.engine import CompiledRuleSet
from hub.routing.types import AppealInput, Decision
from hub.timeutil import utcnow

CHANGED_SHOWN = 200


@dataclass
class Change:
    appeal: Appeal
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


def compare(
    appeals: list[Appeal],
    current: CompiledRuleSet,
    draft: CompiledRuleSet,
    open_counts: dict[str, int],
) -> Comparison:
    result = Comparison(total=len(appeals))
    states = (
        MemoryAssignmentState(counts=dict(open_counts)),
        MemoryAssignmentState(counts=dict(open_counts)),
    )
    departments: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    assignees: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    for appeal in reversed(appeals):  # oldest first, as they arrived
        item = appeal_input(appeal)
        moment = appeal.received_at or utcnow()
        before = current.decide(item, now=moment, state=states[0])
        after = draft.decide(item, now=moment, state=states[1])
        for i, decision in enumerate((before, after)):
            departments[i][decision.department or "—"] += 1
            assignees[i][_who(decision)] += 1
        a, b = _summary(before), _summary(after)
        differing = [k for k in a if a[k] != b[k]]
        if differing:
            result.changed += 1
            result.field_counts.update(differing)
            if len(result.changes) < CHANGED_SHOWN:
                result.changes.append(Change(appeal, before, after, differing))
    result.departments = _table(*departments)
    result.assignees = _table(*assignees)
    result.changes.reverse()  # newest first, like every list in the UI
    return result


def _who(d: Decision) -> str:
    return f"{d.assignee.name} ({d.assignee.id})" if d.assignee else "—"


def route_text(
    ruleset: CompiledRuleSet, appeal: AppealInput, open_counts: dict[str, int]
) -> Decision:
    """The "try a text" box: one decision, now, touching nothing."""
    state = MemoryAssignmentState(counts=dict(open_counts))
    return ruleset.decide(appeal, now=appeal.received_at or utcnow(), state=state)
