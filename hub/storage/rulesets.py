"""Rule set versions: import as a draft, publish (one in force), export, list, audit.

A version stores the directory's files verbatim, so export gives back the same bytes.
Nothing here commits: the caller's unit of work does (``hub.db.session_scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, text, update
from sqlmodel import Session, col, select

from hub.models import AuditEntry, RuleSetState, RuleSetVersion
from hub.routing.compile import RulesInvalid, check_files, checksum
from hub.timeutil import utcnow

_PUBLISH_LOCK = 7_402_113  # pg_advisory_xact_lock key: one publication at a time


class RuleSetError(Exception):
    """The requested version cannot be used as asked (missing, not a draft…)."""


def import_draft(
    *, session: Session, files: dict[str, str], created_by: str, note: str | None = None
) -> RuleSetVersion:
    """Stores a valid directory as a new draft; raises ``RulesInvalid`` with every error."""
    _model, problems = check_files(files)
    if problems.errors:
        raise RulesInvalid(problems.errors)
    version = RuleSetVersion(
        state=RuleSetState.draft,
        files=dict(sorted(files.items())),
        checksum=checksum(files),
        note=note,
        created_by=created_by,
    )
    session.add(version)
    session.flush()
    _audit(
        session, created_by, "rules.import", version, {"checksum": version.checksum, "note": note}
    )
    return version


def publish(
    *, session: Session, published_by: str, version_id: int | None = None
) -> RuleSetVersion:
    """Puts a draft in force (default: the newest draft); the one in force is superseded."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PUBLISH_LOCK})
    if version_id is None:
        version = session.exec(
            select(RuleSetVersion)
            .where(RuleSetVersion.state == RuleSetState.draft)
            .order_by(col(RuleSetVersion.id).desc())
            .limit(1)
        ).first()
        if version is None:
            raise RuleSetError("нет черновиков: сначала clienthub rules import DIR")
    else:
        version = session.get(RuleSetVersion, version_id)
        if version is None:
            raise RuleSetError(f"версии {version_id} нет")
        if version.state != RuleSetState.draft:
            raise RuleSetError(
                f"версия {version_id} — {version.state}; опубликовать можно только черновик "
                f"(вернуть старую: clienthub rules restore {version_id})"
            )
    _model, problems = check_files(version.files)
    if problems.errors:
        raise RulesInvalid(problems.errors)
    previous = published_id(session)
    session.execute(
        update(RuleSetVersion)
        .where(col(RuleSetVersion.state) == RuleSetState.published)
        .values(state=RuleSetState.superseded)
    )
    version.state = RuleSetState.published
    version.published_by = published_by
    version.published_at = utcnow()
    session.add(version)
    session.flush()
    _audit(session, published_by, "rules.publish", version, {"previous": previous})
    return version


def restore(*, session: Session, version_id: int, created_by: str) -> RuleSetVersion:
    """A new draft with the files of an older version, ready to be published again."""
    old = session.get(RuleSetVersion, version_id)
    if old is None:
        raise RuleSetError(f"версии {version_id} нет")
    return import_draft(
        session=session,
        files=old.files,
        created_by=created_by,
        note=f"восстановлено из версии {version_id}",
    )


def published_id(session: Session) -> int | None:
    """The version in force: one indexed query, run for every routed appeal."""
    return session.exec(
        select(RuleSetVersion.id).where(RuleSetVersion.state == RuleSetState.published).limit(1)
    ).first()


def get_version(*, session: Session, version_id: int) -> RuleSetVersion | None:
    return session.get(RuleSetVersion, version_id)


def get_published(session: Session) -> RuleSetVersion | None:
    version_id = published_id(session)
    return None if version_id is None else session.get(RuleSetVersion, version_id)


def export_files(*, session: Session, version_id: int | None = None) -> tuple[int, dict[str, str]]:
    """The files of a version (default: the published one), exactly as imported."""
    version = (
        get_published(session) if version_id is None else session.get(RuleSetVersion, version_id)
    )
    if version is None:
        what = "опубликованной версии" if version_id is None else f"версии {version_id}"
        raise RuleSetError(f"нет {what}")
    assert version.id is not None
    return version.id, dict(version.files)


@dataclass(frozen=True)
class VersionInfo:
    """A version without its files: lists need only this, and the files of a directory are a
    few hundred kilobytes per version."""

    id: int
    state: str
    checksum: str
    note: str | None
    created_by: str
    created_at: datetime
    published_by: str | None
    published_at: datetime | None


def list_versions(session: Session) -> list[VersionInfo]:
    """Every version, newest first, files not loaded."""
    columns = [getattr(RuleSetVersion, name) for name in VersionInfo.__dataclass_fields__]
    rows = session.execute(select(*columns).order_by(col(RuleSetVersion.id).desc()))
    return [VersionInfo(*row) for row in rows]


def newest_draft_after(session: Session, version_id: int) -> RuleSetVersion | None:
    """The newest draft numbered above ``version_id``, files loaded: one row read."""
    return session.exec(
        select(RuleSetVersion)
        .where(RuleSetVersion.state == RuleSetState.draft, col(RuleSetVersion.id) > version_id)
        .order_by(col(RuleSetVersion.id).desc())
        .limit(1)
    ).first()


def count_versions(session: Session) -> int:
    return session.exec(select(func.count()).select_from(RuleSetVersion)).one()


def _audit(
    session: Session, actor: str, action: str, version: RuleSetVersion, details: dict[str, object]
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type="ruleset_version",
            object_id=str(version.id),
            details={k: v for k, v in details.items() if v is not None},
        )
    )
