"""tools/audit_deps.py: OSV range logic, the lock and allow-list readers, and the exit codes,
on small hand-written records."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "tools" / "audit_deps.py")
assert _spec and _spec.loader
audit_deps = importlib.util.module_from_spec(_spec)
sys.modules["audit_deps"] = audit_deps
_spec.loader.exec_module(audit_deps)


def rec(events=None, versions=None, *, name="demo", rid="PYSEC-0000-1"):
    affected = {"package": {"name": name, "ecosystem": "PyPI"}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"id": rid, "aliases": ["CVE-0000-1"], "details": "a bug", "affected": [affected]}


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("1.9.9", True), ("2.0", False), ("2.0.1", False), ("3.0", False)],
)
def test_introduced_zero_fixed(version: str, expected: bool) -> None:
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    assert audit_deps.in_range(Version(version), events) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.0", False),  # before the first interval
        ("1.2", True),
        ("1.4.9", True),
        ("1.5", False),  # fixed is exclusive
        ("1.9", False),  # between the intervals
        ("2.0", True),  # introduced is inclusive
        ("2.3", True),  # last_affected is inclusive
        ("2.3.1", False),
        ("3.0rc1", False),
    ],
)
def test_two_intervals_fixed_and_last_affected(version: str, expected: bool) -> None:
    # Events out of order on purpose: evaluation sorts them by version.
    events = [
        {"introduced": "2.0"},
        {"fixed": "1.5"},
        {"last_affected": "2.3"},
        {"introduced": "1.2"},
    ]
    assert audit_deps.in_range(Version(version), events) is expected


def test_open_ended_introduced_and_pre_releases() -> None:
    events = [{"introduced": "4.0.0a1"}]
    assert audit_deps.in_range(Version("4.0.0a1"), events)
    assert audit_deps.in_range(Version("9.9"), events)
    assert not audit_deps.in_range(Version("3.99"), events)
    # A fix released as a pre-release closes the interval from that pre-release on.
    fixed_rc = [{"introduced": "0"}, {"fixed": "2.0rc1"}]
    assert audit_deps.in_range(Version("2.0b3"), fixed_rc)
    assert not audit_deps.in_range(Version("2.0rc1"), fixed_rc)
    assert not audit_deps.in_range(Version("2.0"), fixed_rc)


def test_limit_and_unparsable_events_are_skipped() -> None:
    events = [{"introduced": "0"}, {"fixed": "not a version"}, {"limit": "1.0"}]
    assert audit_deps.in_range(Version("5.0"), events)
    assert not audit_deps.in_range(Version("5.0"), [])


def test_versions_list_and_ranges_and_other_packages() -> None:
    listed = rec(versions=["1.0", "1.1"])
    assert audit_deps.affects(listed, "demo", "1.1") == []
    assert audit_deps.affects(listed, "demo", "1.1.0") == []  # 1.1.0 == 1.1 for packaging
    assert audit_deps.affects(listed, "demo", "1.2") is None
    ranged = rec(events=[{"introduced": "0"}, {"fixed": "2.0"}])
    assert audit_deps.affects(ranged, "demo", "1.5") == ["2.0"]
    assert audit_deps.affects(ranged, "other", "1.5") is None
    git_only = rec()
    git_only["affected"][0]["ranges"] = [
        {"type": "GIT", "repo": "https://x", "events": [{"introduced": "0"}, {"fixed": "abc"}]}
    ]
    assert audit_deps.affects(git_only, "demo", "1.5") is None  # git ranges are not versions
    withdrawn = {**ranged, "withdrawn": "2024-01-01T00:00:00Z"}
    assert audit_deps.affects(withdrawn, "demo", "1.5") is None
    npm = rec(events=[{"introduced": "0"}])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    assert audit_deps.affects(npm, "demo", "1.5") is None


def test_read_lock_normalises_names_and_refuses_loose_pins() -> None:
    text = "# comment\n-c other.txt\nPyYAML==6.0.3\nruamel.yaml==0.19.1 ; python_version>'3'\n"
    assert audit_deps.read_lock(text) == {"pyyaml": "6.0.3", "ruamel-yaml": "0.19.1"}
    with pytest.raises(ValueError, match="not an exact pin"):
        audit_deps.read_lock("httpx>=0.27\n")


def test_allow_list_needs_a_reason_and_matches_aliases() -> None:
    with pytest.raises(ValueError, match="reason"):
        audit_deps.read_allow('[[accept]]\nid = "PYSEC-0000-1"\npackage = "demo"\n')
    allowed = audit_deps.read_allow(
        '[[accept]]\nid = "CVE-0000-1"\npackage = "Demo"\nreason = "not reachable from us"\n'
    )
    records = {"demo": [rec(events=[{"introduced": "0"}, {"fixed": "2.0"}])]}
    [finding] = audit_deps.audit({"demo": "1.0"}, records, allowed)
    assert finding.accepted == "not reachable from us"
    assert "ACCEPTED" in finding.line() and "fixed in 2.0" in finding.line()
    assert audit_deps.audit({"demo": "2.0"}, records, allowed) == []


def _tree(tmp_path: Path, lock: str, allow: str = "") -> list[str]:
    adv = tmp_path / "adv"
    (adv / "vulns" / "demo").mkdir(parents=True, exist_ok=True)
    (adv / "vulns" / "demo" / "PYSEC-0000-1.yaml").write_text(
        "id: PYSEC-0000-1\naliases: [CVE-0000-1]\ndetails: a bug\naffected:\n"
        "- package: {name: demo, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: '0'\n    - fixed: '2.0'\n"
    )
    (tmp_path / "lock").write_text(lock)
    (tmp_path / "allow.toml").write_text(allow)
    return [
        *("--lock", str(tmp_path / "lock"), "--advisories", str(adv)),
        *("--allow", str(tmp_path / "allow.toml")),
    ]


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit_deps.main(_tree(tmp_path, "demo==2.0\nother==1.0\n")) == 0
    assert audit_deps.main(_tree(tmp_path, "demo==1.9\n")) == 1
    out = capsys.readouterr().out
    assert "demo==1.9: PYSEC-0000-1, CVE-0000-1; fixed in 2.0" in out and "VULNERABLE" in out
    allow = '[[accept]]\nid = "PYSEC-0000-1"\npackage = "demo"\nreason = "accepted: test"\n'
    assert audit_deps.main(_tree(tmp_path, "demo==1.9\n", allow)) == 0
    assert audit_deps.main(_tree(tmp_path, "demo>=1.9\n")) == 2
    args = _tree(tmp_path, "demo==1.9\n")
    args[args.index("--advisories") + 1] = str(tmp_path / "missing")
    assert audit_deps.main(args) == 2  # a database that is not there is not a pass


def test_a_bare_clone_is_read_at_head(tmp_path: Path) -> None:
    """The database as git keeps it: records are read from HEAD, not from a work tree."""
    args = _tree(tmp_path, "demo==1.9\n")
    adv = tmp_path / "adv"
    git = ["git", "-C", str(adv), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(adv)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "records"], check=True)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(adv), str(bare)], check=True)
    args[args.index("--advisories") + 1] = str(bare)
    assert audit_deps.main(args) == 1
    assert "PyPA advisory database" in audit_deps.snapshot_of(bare)


def test_without_any_source_it_says_nothing_was_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_deps, "service_reachable", lambda pins: False)
    args = _tree(tmp_path, "demo==1.9\n")
    i = args.index("--advisories")
    del args[i : i + 2]
    monkeypatch.delenv(audit_deps.ADVISORY_ENV, raising=False)
    assert audit_deps.main([*args, "--pip-audit"]) == 0
    assert "NOTHING AUDITED" in capsys.readouterr().out
