"""The decision as a whole: filters first, rules in order, fallback, target and JSON shape."""

from __future__ import annotations

import json

from hub.routing.assign import MemoryAssignmentState
from hub.routing.engine import NO_RULE_MATCHED
from tests.unit.routing.helpers import compiled, decide, rule_ids, rules, step

RS = compiled()


class TestFilters:
    def test_contest_hashtag_on_its_channel_only(self) -> None:
        decision = decide(RS, "Участвую! #Конкурс", channel="vk")
        assert decision.filtered == "Конкурс"
        assert decision.assignee is None and decision.target is None
        assert [t.step for t in decision.trace] == ["filter"]
        assert decision.trace[0].rule == "contest"
        assert "#конкурс" in decision.trace[0].message
        assert decide(RS, "Участвую! #Конкурс", channel="telegram").filtered is None

    def test_spam_pattern(self) -> None:
        decision = decide(RS, "Лучшее КАЗИНО онлайн")
        assert decision.filtered == "Спам" and decision.trace[0].rule == "spam"

    def test_blacklisted_phone_in_any_spelling(self) -> None:
        assert decide(RS, "Здравствуйте", phone="8 (900) 000 00 00").filtered == "Чёрный список"

    def test_blacklisted_platform_id_and_email_domain(self) -> None:
        assert decide(RS, "Привет", channel="vk", platform_id="666").filtered == "Чёрный список"
        assert decide(RS, "Привет", channel="telegram", platform_id="666").filtered is None
        assert decide(RS, "Привет", email="x@SPAM.example").filtered == "Чёрный список"

    def test_filter_action_in_a_rule(self) -> None:
        rs = rules("  - id: f\n    when: {words: [реклама]}\n    then: {filter: Реклама}\n")
        decision = decide(rs, "Реклама вашего бизнеса")
        assert decision.filtered == "Реклама" and decision.assignee is None


class TestRules:
    def test_rules_run_in_order_and_later_actions_override(self) -> None:
        rs = rules(
            "  - id: a\n    then: {department: hotline, tags: [a]}\n"
            "  - id: b\n    when: {words: [вакансия]}\n    then: {department: quality, tags: [b]}\n"
        )
        decision = decide(rs, "вакансии есть?")
        assert rule_ids(decision) == ["a", "b"]
        assert decision.department == "quality"
        assert decision.tags == ["a", "b"]

    def test_stop(self) -> None:
        rs = rules(
            "  - id: a\n    when: {words: [вакансия]}\n    then: {tags: [a], stop: true}\n"
            "  - id: b\n    then: {tags: [b]}\n"
        )
        assert rule_ids(decide(rs, "вакансии")) == ["a"]
        assert rule_ids(decide(rs, "привет")) == ["b"]

    def test_setting_the_region_reselects_later_rules(self) -> None:
        rs = rules(
            "  - id: set\n    when: {channel: telegram}\n    then: {region: samara}\n"
            "  - id: early\n    when: {region: moscow}\n    then: {tags: [moscow]}\n"
            "  - id: later\n    when: {region: samara}\n    then: {tags: [samara]}\n"
            "  - id: topic\n    when: {region: samara}\n    then: {topic: vacancy}\n"
            "  - id: by-topic\n    when: {topic: vacancy}\n    then: {tags: [vacancy]}\n"
        )
        decision = decide(rs, "Я живу в Москве", channel="telegram")
        assert rule_ids(decision) == ["set", "later", "topic", "by-topic"]
        assert decision.region == "samara" and decision.topic == "vacancy"
        assert "регион samara" in step(decision, "rule")

    def test_topic_set_by_a_rule_is_traced(self) -> None:
        rs = rules('  - id: ivr\n    when: {fields: {ivr: "3"}}\n    then: {topic: vacancy}\n')
        decision = decide(rs, "", kind="call", fields={"ivr": "3"})
        assert decision.topic == "vacancy"
        assert "тема vacancy" in step(decision, "rule")


class TestFallback:
    def test_nothing_assigned_goes_to_the_global_fallback(self) -> None:
        decision = decide(RS, "Добрый день")
        assert decision.topic is None and decision.region is None
        assert decision.department == "reserve"
        assert decision.assignee.id == "reserve"  # type: ignore[union-attr]
        assert decision.target.stage == "UC_TRIAGE"  # type: ignore[union-attr]
        fallback = step(decision, "fallback")
        assert NO_RULE_MATCHED in fallback and "регион, тема" in fallback

    def test_target_from_the_department(self) -> None:
        decision = decide(RS, "Просроченное молоко в Москве")
        assert decision.department == "quality"
        assert (decision.target.entity, decision.target.pipeline) == ("deal", 1)  # type: ignore[union-attr]
        assert "задано: отдел" in step(decision, "target")

    def test_target_from_the_rule_wins(self) -> None:
        rs = rules(
            "  - id: a\n    then:\n      assign: {pool: hotline}\n"
            "      target: {entity: lead, stage: NEW}\n"
        )
        decision = decide(rs)
        assert (decision.target.entity, decision.target.stage) == ("lead", "NEW")  # type: ignore[union-attr]


def test_decision_json_shape() -> None:
    decision = decide(RS, "Спасибо за вежливость, Казань!", phone="+7 843 000 11 22")
    data = json.loads(json.dumps(decision.to_json(), ensure_ascii=False))
    assert set(data) >= {
        "topic",
        "region",
        "department",
        "assignee",
        "target",
        "filtered",
        "tags",
        "rules_version",
        "trace",
    }
    assert set(data["assignee"]) == {"id", "name", "bitrix_user_id"}
    assert set(data["target"]) == {"entity", "pipeline", "stage"}
    assert all({"step", "message"} <= set(t) for t in data["trace"])
    assert len(data["rules_checksum"]) == 64


def test_decide_is_repeatable_with_a_fresh_state() -> None:
    a = decide(RS, "Ищу работу в Тольятти", state=MemoryAssignmentState())
    b = decide(RS, "Ищу работу в Тольятти", state=MemoryAssignmentState())
    assert a == b
