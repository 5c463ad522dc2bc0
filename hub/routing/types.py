"""The engine's input and output, shared by the pipeline, `clienthub route` and the UI.

The JSON shape of both is the one `clienthub route` reads and prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class AuthorInput:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    platform_id: str | None = None


@dataclass
class AppealInput:
    channel: str
    source: str
    kind: str
    text: str
    author: AuthorInput = field(default_factory=AuthorInput)
    fields: dict[str, Any] = field(default_factory=dict)
    rating: int | None = None
    received_at: datetime | None = None


@dataclass
class TraceStep:
    step: str  # "filter", "region", "topic", "rule", "assign", "target", "fallback", ...
    message: str  # a human sentence in Russian
    rule: str | None = None  # the rule (or table) that decided, when one did
    data: dict[str, Any] = field(default_factory=dict)  # matched words, skipped candidates...


@dataclass
class Assignee:
    id: str
    name: str
    bitrix_user_id: int | None


@dataclass
class Target:
    entity: str = "deal"  # deal or lead
    pipeline: int | None = None  # Bitrix24 category id
    stage: str | None = None  # Bitrix24 stage id


@dataclass
class Decision:
    topic: str | None = None
    region: str | None = None
    department: str | None = None
    assignee: Assignee | None = None
    target: Target | None = None
    filtered: str | None = None  # None, or the reason it is kept but not delivered
    tags: list[str] = field(default_factory=list)
    rules_version: int | None = None
    trace: list[TraceStep] = field(default_factory=list)
    # Optional additions: the store the appeal was tied to (by source, line or text) and the
    # checksum of the rule files, which also identifies an unpublished directory.
    store: str | None = None
    rules_checksum: str | None = None
    # Human names for what was decided (region, city, topic), for CRM titles and the UI.
    labels: dict[str, str] = field(default_factory=dict)
    # Reaction time (sla.yaml, hub/routing/sla_policy.py): the first-reply deadline in ISO 8601
    # UTC, the target in working minutes, the target's id, and the escalation steps
    # ``[{"do", "at", "label"}]`` in time order. Strings, so the decision stays plain JSON.
    reply_due_at: str | None = None
    sla_target_minutes: int | None = None
    sla_rule: str | None = None
    escalation_plan: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
