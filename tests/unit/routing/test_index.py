"""The rule index only preselects: deciding with it equals trying every rule in order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.routing import build_directory, make_appeals
from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet, Working
from hub.routing.facts import Facts
from hub.routing.types import Decision


class BruteForce(CompiledRuleSet):
    """Every rule, in order, no index."""

    def _run_rules(self, facts: Facts, work: Working, decision: Decision) -> None:
        for rule in self.rules:
            if rule.matches(facts, work) and (
                self._apply(rule, work, decision) or decision.filtered is not None
            ):
                return


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    files = build_directory(tmp_path_factory.mktemp("bench"), rules=400, employees=290)
    # Rules that change region and topic midway, so the index must re-select after them.
    extra = (
        "  - id: move-region\n    when: {channel: telegram, words: [молоко]}\n"
        "    then: {region: samara}\n"
        "  - id: after-move\n    when: {region: samara}\n    then: {tags: [samara-now]}\n"
        "  - id: move-topic\n    when: {kind: review, rating: 5}\n    then: {topic: gratitude}\n"
        "  - id: after-topic\n    when: {topic: gratitude}\n    then: {tags: [thanks-now]}\n"
    )
    files["rules.yaml"] = files["rules.yaml"].replace("rules:\n", "rules:\n" + extra, 1)
    return files


def test_index_gives_the_same_decisions(directory: dict[str, str], tmp_path: Path) -> None:
    indexed = compile_files(directory)
    brute = BruteForce(indexed.model, version=None, checksum=indexed.checksum)
    now = datetime(2025, 11, 12, 9, 0, tzinfo=UTC)
    appeals = make_appeals(400, directory, seed=3)
    differences = 0
    fired = 0
    for appeal in appeals:
        a = indexed.decide(appeal, now=now, state=MemoryAssignmentState())
        b = brute.decide(appeal, now=now, state=MemoryAssignmentState())
        differences += a != b
        fired += sum(1 for t in a.trace if t.step == "rule")
    assert differences == 0
    assert fired > len(appeals)  # the rules did fire: the comparison is not vacuous
    assert any(len(i) for i in indexed.index.tables["source"].values())
