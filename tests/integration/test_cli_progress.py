"""Commands that take a while say what they are doing: `clienthub rules import` names each step
with its counts, `clienthub demo --generate` names its preparation and moves its bar every batch
of rows. Both backends (the ``env`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.cli import app
from hub.db import get_engine, session_scope
from hub.demo_generate import generate
from hub.models import Appeal
from hub.rules_io import write_dir
from hub.settings import get_settings
from tests.unit.routing.helpers import files

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
runner = CliRunner()


def _appeals() -> int:
    with session_scope(get_engine(), read_only=True) as s:
        return int(s.execute(select(func.count()).select_from(Appeal)).scalar_one())


def test_rules_import_reports_each_step_with_counts(env: str) -> None:
    done = runner.invoke(app, ["rules", "import", str(SAMPLE)])
    assert done.exit_code == 0, done.output
    steps = done.stderr.splitlines()
    assert [line.split(" ", 1)[0] for line in steps if not line.startswith(" ")] == [
        "1/4", "2/4", "3/4", "4/4",
    ]  # fmt: skip
    assert "читаю файлы" in steps[0] and "12 файлов" in steps[1]
    assert "проверяю" in steps[2] and "ошибок 0" in steps[3]
    assert "магазинов 700" in steps[3] and "сотрудников 283" in steps[3]
    assert "компилирую" in steps[4] and "сохраняю черновик" in steps[6]
    assert "версия 1" in steps[7] and steps[7].endswith(" с)")
    assert done.stdout.startswith("черновик 1:")  # scripts read the result, not the progress


def test_rules_import_stops_at_the_check_with_every_error(env: str, tmp_path: Path) -> None:
    write_dir(tmp_path / "bad", files(rules_yaml="rules:\n  - id: x\n    then: {region: mars}\n"))
    done = runner.invoke(app, ["rules", "import", str(tmp_path / "bad")])
    assert done.exit_code == 2
    assert "2/4 проверяю" in done.stderr and "ошибок 1," in done.stderr
    assert "3/4" not in done.stderr and "rules.yaml:3:" in done.stderr


def test_generate_moves_its_bar_every_batch(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENTHUB_INITIAL_RULES_DIR", str(SAMPLE))
    get_settings.cache_clear()
    done = runner.invoke(app, ["demo", "--generate", "1200", "--months", "1"])
    assert done.exit_code == 0, done.output
    said = done.stderr
    assert "публикую правила" in said  # the first start publishes the sample
    assert said.index("компилирую правила версии 1") < said.index("маршрутизирую")
    assert "добавлено 1200 обращений: #1…#1200" in done.stdout
    calls: list[int] = []
    steps: list[str] = []
    first = generate(get_engine(), 2500, months=1, seed=2, progress=calls.append, step=steps.append)
    assert calls == [1000, 1000, 500] and first == 1201
    assert [s.split()[0] for s in steps] == ["компилирую", "маршрутизирую"]
    assert _appeals() == 3700
