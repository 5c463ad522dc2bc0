"""A rule directory's files -> ``CompiledRuleSet``, refusing anything with an error in it."""

from __future__ import annotations

import hashlib

from hub.routing.engine import CompiledRuleSet
from hub.routing.model import RuleSetModel
from hub.routing.parse import parse_files
from hub.routing.sources import Problem, Problems
from hub.routing.validate import validate


def checksum(files: dict[str, str]) -> str:
    """SHA-256 over paths and contents: equal directories, equal checksums."""
    digest = hashlib.sha256()
    for name in sorted(files):
        for part in (name, files[name]):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


class RulesInvalid(Exception):
    """The directory has errors; ``problems`` lists each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = "; ".join(str(p) for p in problems[:3])
        super().__init__(f"{len(problems)} ошибок в правилах: {first}")


def check_files(files: dict[str, str]) -> tuple[RuleSetModel, Problems]:
    """Everything wrong with a directory, errors and warnings, in file order."""
    model, problems = parse_files(files)
    validate(model, problems)
    problems.sort(key=lambda p: (p.file, p.line))
    return model, problems


def compile_files(files: dict[str, str], *, version: int | None = None) -> CompiledRuleSet:
    model, problems = check_files(files)
    if problems.errors:
        raise RulesInvalid(problems.errors)
    return CompiledRuleSet(model, version=version, checksum=checksum(files))
