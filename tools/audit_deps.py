"""Audit the locked dependencies (requirements.lock) against known vulnerabilities.

    python tools/audit_deps.py --advisories DIR     # offline, a copy of the advisory database
    python tools/audit_deps.py --pip-audit          # pip-audit when its service answers
    CLIENTHUB_ADVISORY_DB=DIR python tools/audit_deps.py --pip-audit   # both (what CI runs)

The offline check reads OSV records of the PyPA advisory database
(github.com/pypa/advisory-database: a checkout or bare clone, whose ``vulns/<package>/*.yaml``
are read at ``HEAD``, or a directory of ``<package>/*.yaml``) for the packages of the lock file,
and decides for every locked ``name==version``: affected when the version is listed in
``affected[].versions`` or falls inside an ``ECOSYSTEM`` range of ``affected[].ranges``
(events ``introduced``/``fixed``/``last_affected``, compared with ``packaging.version``).
Each finding is printed; the exit code is 1 when one of them is not accepted in
``security/audit-allow.toml`` (``[[accept]]`` with ``id``, ``package`` and a non-empty
``reason``), 2 when the inputs are broken, 0 otherwise.

``--pip-audit`` additionally runs ``pip-audit`` over the lock file when the PyPI JSON API is
reachable. The accepted ids are passed to it as ``--ignore-vuln``. The database is not kept in
this repository (it is third-party data): where neither a copy nor pip-audit's service can be
reached, the tool says that nothing was audited and exits 0, so that an offline machine can
still run the tests; the audit is then due wherever a source is reachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ADVISORY_ENV = "CLIENTHUB_ADVISORY_DB"
ALLOW = ROOT / "security" / "audit-allow.toml"
PYPI_PROBE = "https://pypi.org/pypi/{}/{}/json"  # pip-audit's "pypi" service


def canonical(name: str) -> str:
    """PEP 503 normalisation: ``PyYAML``, ``ruamel.yaml`` and ``markdown_it_py`` as the database
    spells its directories."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip requirements file; comments, options, markers and hashes
    are ignored, and any other specifier is an error (a lock pins exactly)."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("-"):
            continue
        line = line.split(";", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s]+)", line)
        if not match:
            raise ValueError(f"not an exact pin: {raw.strip()!r}")
        pins[canonical(match.group(1))] = match.group(3)
    return pins


def _version(text: str) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def in_range(version: Version, events: Iterable[Mapping[str, Any]]) -> bool:
    """OSV range evaluation (ossf.github.io/osv-schema, "Evaluation"): walk the events in version
    order; ``introduced`` at or below the version opens an affected interval, ``fixed`` at or
    below it closes one, ``last_affected`` strictly below it closes one. ``introduced: "0"`` is
    the beginning of time; ``limit`` (git ranges) and unparsable versions are skipped."""
    parsed: list[tuple[Version | None, int, str]] = []
    for event in events:
        for kind, value in event.items():
            if kind not in ("introduced", "fixed", "last_affected"):
                continue
            if kind == "introduced" and str(value) == "0":
                parsed.append((None, 0, kind))
                continue
            v = _version(value)
            if v is not None:
                # At one version: introduced opens before fixed/last_affected close.
                parsed.append((v, 0 if kind == "introduced" else 1, kind))
    parsed.sort(key=lambda p: (p[0] is not None, p[0] or Version("0"), p[1]))
    affected = False
    for v, _order, kind in parsed:
        if kind == "introduced":
            if v is None or version >= v:
                affected = True
        elif kind == "fixed":
            if v is not None and version >= v:
                affected = False
        elif v is not None and version > v:  # last_affected
            affected = False
    return affected


def fixed_versions(affected: Mapping[str, Any]) -> list[str]:
    return [
        str(e["fixed"])
        for r in affected.get("ranges") or []
        if str(r.get("type", "")).upper() in ("ECOSYSTEM", "SEMVER")
        for e in r.get("events") or []
        if "fixed" in e
    ]


def affects(record: Mapping[str, Any], package: str, version: str) -> list[str] | None:
    """None when the record does not affect ``package==version``; else the fixed versions it
    names (possibly none)."""
    if record.get("withdrawn"):
        return None
    v = _version(version)
    for affected in record.get("affected") or []:
        pkg = affected.get("package") or {}
        if str(pkg.get("ecosystem", "")).lower() != "pypi":
            continue
        if canonical(str(pkg.get("name", ""))) != package:
            continue
        listed = {str(x) for x in affected.get("versions") or []}
        hit = version in listed or (
            v is not None and any(_version(x) == v for x in listed if _version(x) is not None)
        )
        if not hit and v is not None:
            hit = any(
                in_range(v, r.get("events") or [])
                for r in affected.get("ranges") or []
                if str(r.get("type", "")).upper() in ("ECOSYSTEM", "SEMVER")
            )
        if hit:
            return fixed_versions(affected)
    return None


@dataclass
class Finding:
    package: str
    version: str
    id: str
    aliases: list[str]
    fixed: list[str]
    summary: str
    accepted: str | None = None  # the allow-list's reason

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed)}" if self.fixed else "no fixed version"
        names = ", ".join([self.id, *self.aliases])
        verdict = f"ACCEPTED: {self.accepted}" if self.accepted else "VULNERABLE"
        return f"{self.package}=={self.version}: {names}; {fix}; {self.summary} -> {verdict}"


@dataclass
class Allowed:
    entries: dict[tuple[str, str], str] = field(default_factory=dict)  # (package, id) -> reason

    def reason(self, finding: Finding) -> str | None:
        for name in (finding.id, *finding.aliases):
            reason = self.entries.get((finding.package, name)) or self.entries.get(("*", name))
            if reason:
                return reason
        return None


def read_allow(text: str) -> Allowed:
    data = tomllib.loads(text) if text.strip() else {}
    out = Allowed()
    for i, entry in enumerate(data.get("accept") or []):
        vid, reason = str(entry.get("id") or ""), str(entry.get("reason") or "").strip()
        if not vid or not reason:
            raise ValueError(f"audit-allow entry {i + 1}: 'id' and a non-empty 'reason' needed")
        out.entries[(canonical(str(entry.get("package") or "*")), vid)] = reason
    return out


def _git(source: Path) -> list[str] | None:
    if (source / "vulns").is_dir():
        return None  # a working tree: read the files themselves
    if (source / "HEAD").is_file() and (source / "objects").is_dir():
        return ["git", f"--git-dir={source}"]
    return None


def snapshot_of(source: Path) -> str:
    """What the records are: the database commit and date, or the directory."""
    git = _git(source) or (["git", "-C", str(source)] if (source / ".git").exists() else None)
    if git:
        done = subprocess.run(
            [*git, "log", "-1", "--format=%h %cI", "HEAD"], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip():
            commit, date = done.stdout.split()
            return f"PyPA advisory database {commit}, {date}"
    marker = source / "SNAPSHOT"
    if marker.is_file():
        commit, *rest = marker.read_text(encoding="utf-8").split()
        return f"PyPA advisory database {commit[:12]}, {rest[-1] if rest else '?'}"
    return str(source)


def load_records(source: Path, packages: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """``{package: [record, …]}`` for ``packages``, from a checkout (``vulns/<package>/``), a
    bare clone (at ``HEAD``) or a plain ``<package>/*.yaml`` directory."""
    wanted = set(packages)
    texts: list[tuple[str, str]] = []
    git = _git(source)
    if git:
        names = subprocess.run(
            [*git, "ls-tree", "-r", "--name-only", "HEAD", "vulns/"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        for name in names:
            parts = name.split("/")
            if len(parts) == 3 and parts[2].endswith(".yaml") and canonical(parts[1]) in wanted:
                body = subprocess.run(
                    [*git, "show", f"HEAD:{name}"], capture_output=True, text=True, check=True
                ).stdout
                texts.append((canonical(parts[1]), body))
    else:
        root = source / "vulns" if (source / "vulns").is_dir() else source
        for path in sorted(root.glob("*/*.yaml")):
            if canonical(path.parent.name) in wanted:
                texts.append((canonical(path.parent.name), path.read_text(encoding="utf-8")))
    out: dict[str, list[dict[str, Any]]] = {}
    for package, body in texts:
        record = yaml.safe_load(body)
        if isinstance(record, dict):
            out.setdefault(package, []).append(record)
    return out


def audit(
    pins: Mapping[str, str], records: Mapping[str, list[Mapping[str, Any]]], allowed: Allowed
) -> list[Finding]:
    findings = []
    for package, version in sorted(pins.items()):
        for record in records.get(package, []):
            fixed = affects(record, package, version)
            if fixed is None:
                continue
            summary = str(record.get("summary") or record.get("details") or "")
            finding = Finding(
                package=package,
                version=version,
                id=str(record.get("id")),
                aliases=[str(a) for a in record.get("aliases") or []],
                fixed=fixed,
                summary=" ".join(summary.split())[:160],
            )
            finding.accepted = allowed.reason(finding)
            findings.append(finding)
    return findings


# -- pip-audit, when its service answers --------------------------------------------------------
def service_reachable(pins: Mapping[str, str], timeout: float = 10.0) -> bool:
    """Whether pip-audit's service answers: the per-release JSON of a locked package, with its
    ``vulnerabilities`` list. (A mirror may serve the per-project JSON but not this one, and
    pip-audit then reports "Dependency not found on PyPI" for everything.)"""
    name, version = next(iter(sorted(pins.items())))
    try:
        with urllib.request.urlopen(PYPI_PROBE.format(name, version), timeout=timeout) as r:
            data = json.loads(r.read())
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    return isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list)


def run_pip_audit(lock: Path, allowed: Allowed) -> int:
    ignore = sorted({vid for _pkg, vid in allowed.entries})
    cmd = [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip"]
    cmd += ["--progress-spinner", "off", "--strict"]
    for vid in ignore:
        cmd += ["--ignore-vuln", vid]
    print("$ " + " ".join(cmd[2:]), flush=True)
    return subprocess.run(cmd, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument(
        "--advisories",
        type=Path,
        default=Path(os.environ[ADVISORY_ENV]) if os.environ.get(ADVISORY_ENV) else None,
        help=f"a copy of the PyPA advisory database (default: ${ADVISORY_ENV})",
    )
    parser.add_argument("--allow", type=Path, default=ALLOW)
    parser.add_argument("--pip-audit", action="store_true", help="also pip-audit when reachable")
    args = parser.parse_args(argv)
    try:
        pins = read_lock(args.lock.read_text(encoding="utf-8"))
        allowed = read_allow(args.allow.read_text(encoding="utf-8") if args.allow.exists() else "")
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    status, sources = 0, 0
    if args.advisories is not None:
        if not args.advisories.is_dir():
            print(f"audit: {args.advisories} is not a directory", file=sys.stderr)
            return 2
        try:
            records = load_records(args.advisories, pins)
        except (subprocess.CalledProcessError, yaml.YAMLError) as exc:
            print(f"audit: cannot read {args.advisories}: {exc}", file=sys.stderr)
            return 2
        sources += 1
        print(
            f"audit: {len(pins)} locked packages, {sum(map(len, records.values()))} advisories "
            f"for {len(records)} of them ({snapshot_of(args.advisories)})"
        )
        findings = audit(pins, records, allowed)
        for finding in findings:
            print("  " + finding.line())
        open_findings = [f for f in findings if not f.accepted]
        used = {(f.package, n) for f in findings for n in (f.id, *f.aliases)}
        for key in sorted(set(allowed.entries) - used):
            if not any(k[1] == key[1] for k in used):
                print(f"  note: allow-list entry {key[1]} ({key[0]}) matches nothing any more")
        status = 1 if open_findings else 0
        print(
            f"audit: {len(findings)} finding(s), {len(open_findings)} not accepted"
            + (" -> FAIL" if status else " -> ok")
        )
    if args.pip_audit:
        if service_reachable(pins):
            sources += 1
            status = max(status, 1 if run_pip_audit(args.lock, allowed) else 0)
        else:
            print(
                "audit: pip-audit skipped, its service (the PyPI JSON API) is unreachable from "
                f"here ({dt.datetime.now(dt.UTC):%Y-%m-%d})"
            )
    if sources == 0:
        print(
            f"audit: NOTHING AUDITED: no advisory database (--advisories or ${ADVISORY_ENV}) and "
            "no reachable pip-audit service; run it where one is (docs/reliability.md)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
