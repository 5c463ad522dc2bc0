"""Directory <-> {path: text}: exact both ways, and nothing but rule files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.rules_io import DirectoryError, checksum, read_dir, write_dir

SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"


def test_sample_round_trips_byte_for_byte(tmp_path: Path) -> None:
    files = read_dir(SAMPLE)
    write_dir(tmp_path / "out", files)
    for name in files:
        assert (tmp_path / "out" / name).read_bytes() == (SAMPLE / name).read_bytes()
    assert read_dir(tmp_path / "out") == files


def test_crlf_bom_and_subfolders_survive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "notes").mkdir(parents=True)
    (src / "stores.csv").write_bytes("\ufeffid;region\r\n1;moscow\r\n".encode())
    (src / "notes" / "a.md").write_bytes("без перевода строки в конце".encode())
    write_dir(tmp_path / "dst", read_dir(src))
    assert (tmp_path / "dst" / "stores.csv").read_bytes() == (src / "stores.csv").read_bytes()
    assert (tmp_path / "dst" / "notes" / "a.md").read_bytes() == (
        src / "notes" / "a.md"
    ).read_bytes()


def test_hidden_and_editor_files_are_not_rules(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "rules.yaml~").write_text("old")
    (tmp_path / ".~lock.stores.csv#").write_text("lock")
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    assert list(read_dir(tmp_path)) == ["rules.yaml"]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "stores.csv").write_bytes("город".encode("cp1251"))
    with pytest.raises(DirectoryError, match="не UTF-8"):
        read_dir(tmp_path)


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="не найден"):
        read_dir(tmp_path / "nope")
    with pytest.raises(DirectoryError, match="пуст"):
        read_dir(tmp_path)


def test_write_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(DirectoryError, match="не пуст"):
        write_dir(tmp_path, {"rules.yaml": "rules: []\n"})
    write_dir(tmp_path, {"rules.yaml": "rules: []\n"}, overwrite=True)
    assert (tmp_path / "keep.txt").exists()


def test_write_refuses_paths_outside(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="за пределы"):
        write_dir(tmp_path / "out", {"../evil.yaml": "x"})


def test_checksum_depends_on_names_and_bytes() -> None:
    base = checksum({"a.yaml": "x\n"})
    assert base == checksum({"a.yaml": "x\n"})
    assert base != checksum({"a.yaml": "x\r\n"})
    assert base != checksum({"b.yaml": "x\n"})
    assert checksum({"ab": "c"}) != checksum({"a": "bc"})
