"""Topic scoring from the dictionaries, with the winning words in the trace."""

from __future__ import annotations

from tests.unit.routing.helpers import compiled, decide

TOPICS = """\
topics:
  complaint_quality:
    title: Качество
    words: {просрочка: 3, молоко: 1, "срок годности": 3}
  price:
    title: Цена
    words: {ценник: 3, молоко: 1}
    min_score: 3
  gratitude:
    title: Благодарность
    words: {спасибо: 2}
    negative: [заранее]
  other:
    title: Прочее
    words: {вопрос: 2}
"""
RULES = "rules:\n  - id: any\n    then: {tags: [x]}\n"
RS = compiled(topics_yaml=TOPICS, rules_yaml=RULES)


def topic(text: str) -> tuple[str | None, str, dict]:
    decision = decide(RS, text)
    step = next(t for t in decision.trace if t.step == "topic")
    return decision.topic, step.message, step.data


def test_best_score_wins_with_words_in_trace() -> None:
    code, message, data = topic("Молоко просрочено? Нет, просрочка по сроку годности")
    assert code == "complaint_quality"
    assert "просрочка" in message and "срок годности" in message
    assert data["scores"]["complaint_quality"] == 7


def test_each_entry_counts_once() -> None:
    _, _, data = topic("просрочка, просрочка и ещё раз просрочка")
    assert data["scores"]["complaint_quality"] == 3


def test_below_threshold_stays_unknown() -> None:
    code, message, _ = topic("молоко")
    assert code is None
    assert "ниже порога" in message


def test_topic_threshold_of_its_own() -> None:
    # «ценник» scores 3: enough for «price» (min 3)...
    assert topic("ценник")[0] == "price"


def test_negative_word_removes_the_topic() -> None:
    code, message, _ = topic("Заранее спасибо за ответ")
    assert code is None
    assert "заранее" in message


def test_tie_goes_to_the_topic_higher_in_the_file() -> None:
    code, message, _ = topic("спасибо, вопрос")
    assert code == "gratitude"
    assert "Равный счёт с other" in message


def test_runner_up_is_named() -> None:
    _, message, _ = topic("Спасибо, но молоко — просрочка")
    assert "Следующая" in message


def test_no_words_at_all() -> None:
    code, message, _ = topic("Добрый вечер")
    assert code is None and "ни одно слово" in message
