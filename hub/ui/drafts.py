"""The working draft: where every change made in the browser goes before it is published.

The working draft is the newest draft newer than the version in force (an older draft would
silently undo later publications, so it is never edited). Editing changes the draft's files in
place: published and superseded versions never change, a draft does until it is published.
A change is saved only if it brings no new error: errors the directory already had do not block
an unrelated edit, but every error the change would add comes back with file, line and field.
Each saved change is audited with its before and after.
"""

from __future__ import annotations

import difflib
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace

from sqlmodel import Session

from hub.models import RuleSetState, RuleSetVersion
from hub.routing.compile import check_files, checksum, compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.service import compiled as compiled_published
from hub.routing.sources import Problem
from hub.storage import rulesets
from hub.storage.ui_queries import add_audit
from hub.ui.i18n import DEFAULT_LANGUAGE, current_language, translate_message

_lock = threading.Lock()


class DraftError(Exception):
    """The change cannot be made (no rules at all, version missing…)."""


@dataclass
class CheckResult:
    new_errors: list[Problem]
    problems: list[Problem]  # everything the checker says about the changed directory

    @property
    def ok(self) -> bool:
        return not self.new_errors


def working_draft(session: Session) -> RuleSetVersion | None:
    """The newest draft newer than the version in force; only its row is read."""
    return rulesets.newest_draft_after(session, rulesets.published_id(session) or 0)


def ensure_draft(session: Session, *, actor: str) -> RuleSetVersion:
    """The working draft, or a new one copied from the version in force."""
    draft = working_draft(session)
    if draft is not None:
        return draft
    published = rulesets.get_published(session)
    if published is None:
        raise DraftError("нет опубликованной версии: загрузите справочник (clienthub rules import)")
    return rulesets.import_draft(
        session=session,
        files=dict(published.files),
        created_by=actor,
        note=f"черновик от версии {published.id}",
    )


def check_change(before: dict[str, str], after: dict[str, str]) -> CheckResult:
    """Problems of ``after``, and which errors it adds compared with ``before``."""
    old, new = problems_of(before), problems_of(after)
    seen = Counter((p.file, p.message) for p in old if p.level == "error")
    added: list[Problem] = []
    for p in (p for p in new if p.level == "error"):
        key = (p.file, p.message)
        if seen[key]:
            seen[key] -= 1
        else:
            added.append(p)
    return CheckResult(added, list(new))


_checked: OrderedDict[str, list[Problem]] = OrderedDict()


def problems_of(files: dict[str, str]) -> list[Problem]:
    """``check_files`` remembered by checksum: a draft is checked again at every edit. The
    checker writes Russian; an English reader gets the messages from the catalogue."""
    key = checksum(files)
    with _lock:
        found = _checked.get(key)
    if found is None:
        _model, problems = check_files(files)
        found = list(problems)
        with _lock:
            _checked[key] = found
            while len(_checked) > 8:
                _checked.popitem(last=False)
    language = current_language()
    if language == DEFAULT_LANGUAGE:
        return list(found)
    return [replace(p, message=translate_message(p.message, language)) for p in found]


def save_files(
    session: Session,
    *,
    draft: RuleSetVersion,
    files: dict[str, str],
    actor: str,
    what: str,
    details: dict[str, object],
    check: CheckResult | None = None,
) -> CheckResult:
    """Store a change in the draft unless it adds errors; the result says which."""
    if draft.state != RuleSetState.draft:
        raise DraftError(f"версия {draft.id} — {draft.state}: менять можно только черновик")
    result = check or check_change(draft.files, files)
    if not result.ok:
        return result
    draft.files = dict(sorted(files.items()))
    draft.checksum = checksum(files)
    session.add(draft)
    add_audit(
        session,
        actor=actor,
        action=f"rules.draft.{what}",
        object_type="ruleset_version",
        object_id=str(draft.id),
        details=details,
    )
    return result


def unified(old: dict[str, str], new: dict[str, str], a: str, b: str) -> dict[str, list[str]]:
    """Per changed file, the unified diff lines (no trailing newlines)."""
    out: dict[str, list[str]] = {}
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        lines = difflib.unified_diff(
            old.get(name, "").splitlines(),
            new.get(name, "").splitlines(),
            fromfile=f"{a}/{name}",
            tofile=f"{b}/{name}",
            lineterm="",
            n=2,
        )
        out[name] = list(lines)
    return out


_drafts: OrderedDict[str, CompiledRuleSet] = OrderedDict()


def compiled_version(session: Session, version: RuleSetVersion) -> CompiledRuleSet:
    """A compiled rule set for any version: published ones from the routing cache, drafts
    (whose files change) by checksum, a couple kept."""
    assert version.id is not None
    if version.state != RuleSetState.draft:
        return compiled_published(session, version.id)
    with _lock:
        found = _drafts.get(version.checksum)
        if found is not None:
            _drafts.move_to_end(version.checksum)
            return found
    ruleset = compile_files(version.files, version=version.id)
    with _lock:
        _drafts[version.checksum] = ruleset
        while len(_drafts) > 2:
            _drafts.popitem(last=False)
    return ruleset
