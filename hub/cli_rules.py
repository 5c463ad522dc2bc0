"""`clienthub rules …` and `clienthub route`: the rule directory from the command line.

Exit codes: 0 done; 1 ``rules check`` found errors; 2 the command could not run (bad
arguments, unreadable directory, invalid input, no such version).
"""

from __future__ import annotations

import difflib
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import typer

from hub.routing.types import AppealInput, Decision, TraceStep
from hub.rules_io import DirectoryError, RulesInvalid, check_dir, compile_dir, read_dir, write_dir

rules_app = typer.Typer(
    help="Rule directory: check, import as a draft, publish, export, list versions, diff.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _invalid(exc: RulesInvalid) -> typer.Exit:
    for problem in exc.problems:
        typer.echo(str(problem), err=True)
    return _fail(f"{len(exc.problems)} ошибок — исправьте и повторите (clienthub rules check DIR)")


@rules_app.command("check")
def check(directory: Path = typer.Argument(..., help="The rule directory.")) -> None:
    """Validate a directory: every error and warning with file, line and reason."""
    try:
        problems = check_dir(directory)
    except DirectoryError as exc:
        raise _fail(str(exc)) from None
    for problem in problems:
        typer.echo(str(problem))
    errors = sum(1 for p in problems if p.level == "error")
    warnings = len(problems) - errors
    if errors:
        typer.echo(f"{directory}: ошибок {errors}, предупреждений {warnings}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{directory}: ошибок нет, предупреждений {warnings}")


@rules_app.command("import")
def import_(
    directory: Path = typer.Argument(..., help="The rule directory."),
    note: str = typer.Option(None, "--note", help="What changed, for the version list."),
    by: str = typer.Option("cli", "--by", help="Who imports (kept with the version)."),
) -> None:
    """Store a valid directory as a new draft version. A large directory (700 stores, hundreds
    of employees) takes seconds, so each step says what it does, with counts and its time."""
    from hub.db import session_scope
    from hub.routing.compile import check_files, checksum
    from hub.routing.engine import CompiledRuleSet
    from hub.storage import rulesets

    step = _Steps(4)
    try:
        step.start(f"читаю файлы / reading files: {directory}")
        files = read_dir(directory)
        step.done(f"{len(files)} файлов, {sum(len(t) for t in files.values()) // 1024} КБ")
        step.start("проверяю / checking")
        model, problems = check_files(files)
        errors, warnings = problems.errors, len(problems) - len(problems.errors)
        step.done(
            f"ошибок {len(errors)}, предупреждений {warnings}"
            f"{' (clienthub rules check DIR)' if warnings else ''}; "
            f"тем {len(model.topics)}, регионов {len(model.regions)}, "
            f"магазинов {len(model.stores)}, отделов {len(model.departments)}, "
            f"сотрудников {len(model.employees)}, правил {len(model.rules)}"
        )
        if errors:
            raise RulesInvalid(errors)
        step.start("компилирую / compiling")
        CompiledRuleSet(model, version=None, checksum=checksum(files))
        step.done("маршрутизация готова / routing ready")
        step.start("сохраняю черновик / writing the draft")
        with session_scope() as session:
            version = rulesets.import_draft(session=session, files=files, created_by=by, note=note)
            number = version.id
        step.done(f"версия {number}")
    except DirectoryError as exc:
        raise _fail(str(exc)) from None
    except RulesInvalid as exc:
        raise _invalid(exc) from None
    typer.echo(
        f"черновик {number}: {len(files)} файлов (опубликовать: clienthub rules publish {number})"
    )


class _Steps:
    """Numbered progress lines on stderr ("2/4 проверяю… ошибок 0 … (0.3 с)"); stdout keeps
    only the result, for scripts."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0
        self.started = time.monotonic()

    def start(self, what: str) -> None:
        self.number += 1
        self.started = time.monotonic()
        typer.echo(f"{self.number}/{self.total} {what}…", err=True)

    def done(self, summary: str) -> None:
        typer.echo(f"    {summary} ({time.monotonic() - self.started:.1f} с)", err=True)


@rules_app.command("publish")
def publish(
    version: int = typer.Argument(None, help="Draft to publish (default: the newest draft)."),
    by: str = typer.Option("cli", "--by", help="Who publishes (kept with the version)."),
) -> None:
    """Put a draft in force; the version in force until now is kept as superseded."""
    from hub.db import session_scope
    from hub.routing import service
    from hub.storage import rulesets

    try:
        with session_scope() as session:
            published = rulesets.publish(session=session, published_by=by, version_id=version)
            number = published.id
    except rulesets.RuleSetError as exc:
        raise _fail(str(exc)) from None
    except RulesInvalid as exc:
        raise _invalid(exc) from None
    service.invalidate_cache()
    typer.echo(f"версия {number} опубликована ({by})")


@rules_app.command("restore")
def restore(
    version: int = typer.Argument(..., help="An older version to bring back."),
    by: str = typer.Option("cli", "--by"),
) -> None:
    """Copy an older version into a new draft (then publish it)."""
    from hub.db import session_scope
    from hub.storage import rulesets

    try:
        with session_scope() as session:
            draft = rulesets.restore(session=session, version_id=version, created_by=by)
            number = draft.id
    except rulesets.RuleSetError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"черновик {number} — копия версии {version}")


@rules_app.command("export")
def export(
    directory: Path = typer.Argument(..., help="Where to write the files."),
    version: int = typer.Option(None, "--version", help="Version (default: the published one)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty directory."),
) -> None:
    """Write a version's files back, byte for byte as they were imported."""
    from hub.db import session_scope
    from hub.storage import rulesets

    try:
        with session_scope(read_only=True) as session:
            number, files = rulesets.export_files(session=session, version_id=version)
        write_dir(directory, files, overwrite=force)
    except (rulesets.RuleSetError, DirectoryError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"версия {number}: {len(files)} файлов → {directory}")


@rules_app.command("versions")
def versions() -> None:
    """Every version with its state, who created and published it, and when."""
    from hub.db import session_scope
    from hub.storage import rulesets

    with session_scope(read_only=True) as session:
        rows = rulesets.list_versions(session)
    if not rows:
        typer.echo("версий нет")
    for v in rows:
        published = (
            f"  опубликовал {v.published_by} {v.published_at:%Y-%m-%d %H:%M}"
            if v.published_at
            else ""
        )
        note = f"  «{v.note}»" if v.note else ""
        typer.echo(
            f"{v.id:>5}  {v.state:<10}  создал {v.created_by} {v.created_at:%Y-%m-%d %H:%M}"
            f"{published}  {v.checksum[:12]}{note}"
        )


@rules_app.command("diff")
def diff(
    a: int = typer.Argument(..., help="Older version."),
    b: int = typer.Argument(..., help="Newer version."),
) -> None:
    """Unified diff of two versions' files."""
    from hub.db import session_scope
    from hub.storage import rulesets

    try:
        with session_scope(read_only=True) as session:
            _, old = rulesets.export_files(session=session, version_id=a)
            _, new = rulesets.export_files(session=session, version_id=b)
    except rulesets.RuleSetError as exc:
        raise _fail(str(exc)) from None
    for name in sorted(set(old) | set(new)):
        lines = difflib.unified_diff(
            old.get(name, "").splitlines(keepends=True),
            new.get(name, "").splitlines(keepends=True),
            fromfile=f"v{a}/{name}",
            tofile=f"v{b}/{name}",
        )
        sys.stdout.writelines(lines)


def route_command(
    rules: Path | None = typer.Option(
        None, "--rules", help="A rule directory (default: the published version)."
    ),
    at: str | None = typer.Option(None, "--at", help="Decide as if now were this ISO time."),
) -> None:
    """Route one appeal read as JSON on standard input; print the decision as JSON."""
    from hub.routing.appeal_json import AppealJsonError, appeal_from_json, parse_datetime
    from hub.routing.assign import MemoryAssignmentState
    from hub.timeutil import utcnow

    try:
        now = parse_datetime(at, "--at") if at else utcnow()
        appeal = appeal_from_json(sys.stdin.read())
    except AppealJsonError as exc:
        raise _fail(str(exc)) from None
    if rules is not None:
        try:
            ruleset = compile_dir(rules)
        except DirectoryError as exc:
            raise _fail(str(exc)) from None
        except RulesInvalid as exc:
            raise _invalid(exc) from None
        decision = ruleset.decide(appeal, now=now, state=MemoryAssignmentState())
    else:
        decision = _route_published(appeal, now)
    typer.echo(json.dumps(decision.to_json(), ensure_ascii=False, indent=2, default=str))


def _route_published(appeal: AppealInput, now: datetime) -> Decision:
    """A dry run against the database: cursors are read, not moved."""
    from hub.db import session_scope
    from hub.routing import service
    from hub.storage import rulesets
    from hub.storage.assignment import DbAssignmentState

    with session_scope(read_only=True) as session:
        version_id = rulesets.published_id(session)
        if version_id is None:
            return Decision(trace=[TraceStep(step="rules", message=service.NO_RULES)])
        ruleset = service.compiled(session, version_id)
        state = DbAssignmentState(session, record=False)
        return ruleset.decide(appeal, now=now, state=state)
