"""`clienthub route --rules DIR`: JSON in, decision JSON out, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hub.cli_rules import route_command, rules_app
from hub.rules_io import write_dir
from tests.unit.routing.helpers import files

SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"

app = typer.Typer()
app.add_typer(rules_app, name="rules")
app.command("route")(route_command)

APPEAL = {
    "channel": "twogis",
    "source": "unknown-card",
    "kind": "review",
    "text": "Купила просроченный творог в Казани 😡",
    "author": {"name": "Айгуль", "phone": "+7 (843) 111-22-33", "email": None, "platform_id": "7"},
    "fields": {},
    "rating": 1,
    "received_at": "2025-11-12T10:30:00+03:00",
}


def run(stdin: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["route", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_prints_the_decision() -> None:
    code, out, _ = run(json.dumps(APPEAL), "--rules", str(SAMPLE), "--at", "2025-11-12T11:00+03:00")
    assert code == 0
    decision = json.loads(out)
    assert decision["topic"] == "complaint_quality"
    assert decision["region"] == "tatarstan"
    assert decision["department"] == "quality"
    assert decision["assignee"]["bitrix_user_id"] > 0
    assert decision["target"] == {"entity": "deal", "pipeline": 1, "stage": "C1:NEW"}
    assert decision["filtered"] is None
    assert "негативный отзыв" in decision["tags"]
    assert decision["rules_version"] is None
    steps = [t["step"] for t in decision["trace"]]
    assert steps[:2] == ["region", "topic"] and steps[-3:] == ["assign", "target", "sla"]
    assert decision["sla_rule"] == "complaints" and decision["reply_due_at"]  # sla.yaml


def test_minimal_appeal() -> None:
    appeal = {"channel": "vk", "source": "club1", "kind": "comment", "text": "вакансии есть?"}
    code, out, _ = run(json.dumps(appeal), "--rules", str(SAMPLE))
    assert code == 0
    assert json.loads(out)["topic"] == "vacancy"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "не JSON"),
        ("[1, 2]", "JSON-объект"),
        (json.dumps({"channel": "vk", "text": "x"}), "не хватает полей: source, kind"),
        (json.dumps({**APPEAL, "rating": 7}), "rating"),
        (json.dumps({**APPEAL, "received_at": "вчера"}), "received_at"),
        (json.dumps({**APPEAL, "author": "Иван"}), "author"),
        (json.dumps({**APPEAL, "colour": "red"}), "неизвестные поля: colour"),
        (json.dumps({**APPEAL, "text": 5}), "text"),
    ],
)
def test_bad_input_exits_2_with_a_message(stdin: str, message: str) -> None:
    code, out, err = run(stdin, "--rules", str(SAMPLE))
    assert code == 2
    assert message in err
    assert out == ""


def test_bad_time() -> None:
    code, _, err = run(json.dumps(APPEAL), "--rules", str(SAMPLE), "--at", "завтра")
    assert code == 2 and "--at" in err


def test_invalid_directory_lists_its_errors(tmp_path: Path) -> None:
    broken = files(
        rules_yaml="rules:\n  - id: x\n    when: {region: atlantis}\n    then: {stop: true}\n"
    )
    write_dir(tmp_path, broken)
    code, _, err = run(json.dumps(APPEAL), "--rules", str(tmp_path))
    assert code == 2
    assert "rules.yaml:3:" in err and "atlantis" in err


def test_missing_directory(tmp_path: Path) -> None:
    code, _, err = run(json.dumps(APPEAL), "--rules", str(tmp_path / "nope"))
    assert code == 2 and "не найден" in err
