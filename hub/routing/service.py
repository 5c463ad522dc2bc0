"""The seam the pipeline calls: route one appeal by the published rule set.

The published version is compiled once per process and kept by version id, so a worker
pays one cheap query (which version is in force) per appeal and never a query per rule.
Publishing a new version changes that id; the next appeal compiles it (once, under a lock).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from sqlmodel import Session

from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.types import AppealInput, Decision, TraceStep
from hub.storage import rulesets as rulesets_store
from hub.storage.assignment import DbAssignmentState
from hub.timeutil import utcnow

NO_RULES = (
    "Правила маршрутизации не загружены: опубликованной версии нет; "
    "обращение ждёт в резервной очереди."
)
_KEEP = 4  # versions kept compiled: the one in force and a few just replaced

_lock = threading.Lock()
_compiled: OrderedDict[int, CompiledRuleSet] = OrderedDict()


def route(session: Session, appeal: AppealInput, *, now: datetime | None = None) -> Decision:
    version_id = rulesets_store.published_id(session)
    if version_id is None:
        return Decision(trace=[TraceStep(step="rules", message=NO_RULES)])
    ruleset = compiled(session, version_id)
    state = DbAssignmentState(session)
    try:
        return ruleset.decide(appeal, now=now or utcnow(), state=state)
    finally:
        state.release()


def compiled(session: Session, version_id: int) -> CompiledRuleSet:
    """The compiled rule set of a version, compiling it on first use."""
    ruleset = _compiled.get(version_id)
    if ruleset is not None:
        return ruleset
    with _lock:
        ruleset = _compiled.get(version_id)
        if ruleset is None:
            version = rulesets_store.get_version(session=session, version_id=version_id)
            if version is None:
                raise LookupError(f"rule set version {version_id} vanished")
            ruleset = compile_files(version.files, version=version_id)
            _compiled[version_id] = ruleset
            while len(_compiled) > _KEEP:
                _compiled.popitem(last=False)
        return ruleset


def invalidate_cache() -> None:
    """Forget compiled versions (tests; a version's files never change once stored)."""
    with _lock:
        _compiled.clear()
