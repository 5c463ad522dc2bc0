"""A rule directory on disk <-> ``{relative path: text}``, exactly.

Files are read as UTF-8 without newline translation and written back the same way, so a
directory imported and exported again is identical byte for byte (a BOM or CRLF that a
spreadsheet left in a CSV survives too). Hidden files and editor leftovers are not rules.
"""

from __future__ import annotations

from pathlib import Path

from hub.routing.compile import RulesInvalid, check_files, checksum, compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.sources import Problem

_SKIP_DIRS = {"__pycache__", ".git", ".ipynb_checkpoints"}
_SKIP_SUFFIXES = (".pyc", "~", ".swp", ".tmp")
MAX_FILE_BYTES = 20 * 1024 * 1024


class DirectoryError(Exception):
    """The directory cannot be read or written as a rule directory."""


def _wanted(relative: Path) -> bool:
    if any(part.startswith(".") or part in _SKIP_DIRS for part in relative.parts):
        return False
    return not relative.name.endswith(_SKIP_SUFFIXES)


def read_dir(path: Path) -> dict[str, str]:
    """Every rule file under ``path``, keyed by its POSIX path relative to it, sorted."""
    if not path.is_dir():
        raise DirectoryError(f"{path}: каталог не найден")
    files: dict[str, str] = {}
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if not file.is_file() or not _wanted(relative):
            continue
        data = file.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            raise DirectoryError(f"{relative}: файл больше {MAX_FILE_BYTES // 2**20} МБ")
        try:
            files[relative.as_posix()] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DirectoryError(f"{relative}: не UTF-8 (байт {exc.start})") from exc
    if not files:
        raise DirectoryError(f"{path}: каталог пуст")
    return files


def write_dir(path: Path, files: dict[str, str], *, overwrite: bool = False) -> list[Path]:
    """Writes the files under ``path``; refuses a non-empty directory unless ``overwrite``."""
    if path.exists() and not path.is_dir():
        raise DirectoryError(f"{path}: это файл, а не каталог")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise DirectoryError(f"{path}: каталог не пуст (перезаписать: --force)")
    written: list[Path] = []
    root = path.resolve()
    for name, text in sorted(files.items()):
        target = (path / name).resolve()
        if root not in target.parents:
            raise DirectoryError(f"{name}: путь выходит за пределы каталога")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))
        written.append(target)
    return written


def check_dir(path: Path) -> list[Problem]:
    """Every error and warning of the directory at ``path``, each with file and line."""
    _model, problems = check_files(read_dir(path))
    return list(problems)


def compile_dir(path: Path) -> CompiledRuleSet:
    """Raises ``RulesInvalid`` (with every error) or ``DirectoryError``."""
    return compile_files(read_dir(path))


__all__ = [
    "DirectoryError",
    "RulesInvalid",
    "check_dir",
    "checksum",
    "compile_dir",
    "read_dir",
    "write_dir",
]
