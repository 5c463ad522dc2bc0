"""The phone blacklist, kept where routing reads it: ``filters.yaml`` of the rule directory.

Adding a number is one action for staff (the appeal page's button, the Bitrix24 deal-card action,
``clienthub blacklist add``) and still goes the way every rule change goes (invariant 5): a new
draft from the version in force with the number added, published at once, with an audit entry
naming who, why and from which appeal. The YAML is edited as text, touching only the list of
phones, so the admins' comments and layout survive and ``rules diff`` shows one changed line.
Drafts opened before the change do not contain the number; ``rules diff`` shows it before they
are published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from hub.models import Appeal, AuditEntry
from hub.routing import service as routing_service
from hub.routing.sources import Problems, YList, YMap, load_yaml
from hub.routing.text import parse_phone
from hub.storage import rulesets

FILE = "filters.yaml"
SPAM_TAG = "спам"
NEW_FILTER_ID = "blacklist"
_PUBLISH_LOCK = 7_402_113  # the same key as hub/storage/rulesets.py: one rule change at a time


class BlacklistError(ValueError):
    """The number or the rule directory cannot take the change (said in Russian for staff)."""


@dataclass(frozen=True)
class BlacklistResult:
    phone: str  # E.164
    filter_id: str
    version_id: int | None  # the published version that added it; None when it was there
    already: bool


def blacklisting_filter(session: Session, phone: str | None, *, channel: str = "") -> str | None:
    """The id of the published filter that blacklists ``phone`` (for ``channel``), or None."""
    parsed = parse_phone(phone)
    version_id = rulesets.published_id(session)
    if parsed is None or version_id is None:
        return None
    for flt in routing_service.compiled(session, version_id).filters:
        if parsed.e164 in flt.phones and (not flt.channels or channel in flt.channels):
            return flt.id
    return None


def add_phone(
    session: Session,
    *,
    phone: str,
    actor: str,
    reason: str | None = None,
    appeal_id: int | None = None,
) -> BlacklistResult:
    """Blacklist ``phone``: publish a new rule version with it, audit who and why, and tag the
    appeal it was done from as spam. Idempotent: a listed number publishes nothing."""
    parsed = parse_phone(phone)
    if parsed is None:
        raise BlacklistError(f"«{phone}» — не номер телефона")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PUBLISH_LOCK})
    try:
        _, files = rulesets.export_files(session=session)
    except rulesets.RuleSetError as exc:
        raise BlacklistError(f"нет опубликованных правил: {exc}") from None
    source = files.get(FILE, "filters: []\n")
    filter_id, updated = add_to_filters(source, parsed.e164)
    version_id = None
    if updated is not None:
        note = f"чёрный список: {parsed.e164}" + (f" — {reason}" if reason else "")
        draft = rulesets.import_draft(
            session=session, files={**files, FILE: updated}, created_by=actor, note=note
        )
        version_id = rulesets.publish(session=session, published_by=actor, version_id=draft.id).id
    if appeal_id is not None:
        appeal = session.get(Appeal, appeal_id)
        if appeal is not None and SPAM_TAG not in (appeal.tags or []):
            appeal.tags = [*(appeal.tags or []), SPAM_TAG]
            session.add(appeal)
    session.add(
        AuditEntry(
            actor=actor,
            action="blacklist.add",
            object_type="phone",
            object_id=parsed.e164,
            details={
                k: v
                for k, v in {
                    "reason": reason,
                    "appeal_id": appeal_id,
                    "filter": filter_id,
                    "version": version_id,
                    "already": updated is None,
                }.items()
                if v is not None
            },
        )
    )
    session.flush()
    return BlacklistResult(parsed.e164, filter_id, version_id, updated is None)


def add_to_filters(source: str, e164: str) -> tuple[str, str | None]:
    """(filter id, the new text) — the text is None when the number is listed already. The
    number goes into the first filter with a ``phones`` list (one for every channel and kind
    first), else into a new filter."""
    problems = Problems()
    data = load_yaml(FILE, source, problems)
    if problems.errors or not isinstance(data, YMap | type(None)):
        raise BlacklistError(f"{FILE} не читается: {'; '.join(map(str, problems.errors))}")
    items = data.get("filters") if isinstance(data, YMap) else None
    lines = source.splitlines(keepends=True)
    candidates = [i for i in items or [] if isinstance(i, YMap) and "phones" in i]
    # A filter limited to some channels or kinds would blacklist the number only there.
    candidates.sort(key=lambda i: bool(i.get("channel") or i.get("kind")))
    for item in candidates:
        fid = str(item.get("id") or "")
        listed = {p.e164 for p in map(parse_phone, item.get("phones") or []) if p}
        if e164 in listed:
            return fid, None
        return fid, "".join(_insert(lines, item, e164))
    taken = {str(i.get("id")) for i in items or [] if isinstance(i, YMap)}
    fid = next(
        f"{NEW_FILTER_ID}{n or ''}" for n in range(100) if f"{NEW_FILTER_ID}{n or ''}" not in taken
    )
    return fid, _append_filter(source, items, e164, fid)


def _insert(lines: list[str], item: YMap, e164: str) -> list[str]:
    index = item.line_of("phones") - 1
    line = lines[index]
    value = item["phones"]
    flow = re.match(r"^(\s*phones:\s*\[)(.*)\](\s*(#.*)?\n?)$", line)
    if flow:
        head, inner, tail = flow.group(1), flow.group(2).rstrip(), flow.group(3)
        sep = ", " if inner.strip() else ""
        lines[index] = f'{head}{inner}{sep}"{e164}"]{tail}'
        return lines
    if "[" in line:  # a flow list over several lines: add before the closing bracket
        for end in range(index + 1, len(lines)):
            if "]" in lines[end]:
                head, _, tail = lines[end].rpartition("]")
                lines[end] = f'{head.rstrip()}, "{e164}"]{tail}'
                return lines
    elif isinstance(value, YList) and value.item_lines:
        last = value.item_lines[-1] - 1
        indent = re.match(r"^(\s*-\s*)", lines[last])
        prefix = indent.group(1) if indent else "      - "
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, f'{prefix}"{e164}"\n')
        return lines
    raise BlacklistError(f"{FILE}:{index + 1}: список phones записан так, что его нельзя дополнить")


def _append_filter(source: str, items: object, e164: str, fid: str) -> str:
    block = f'  - id: {fid}\n    reason: Отправитель в чёрном списке\n    phones: ["{e164}"]\n'
    if not isinstance(items, YList) or not items:
        body = re.sub(r"(?m)^filters:.*\n?", "", source).rstrip()
        return (body + "\n" if body else "") + "filters:\n" + block
    return source + ("" if source.endswith("\n") else "\n") + block
