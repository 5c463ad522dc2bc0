"""Realistic appeals on the sample directory: topic and region as a person would route them.

Written as customers write: inflected city names, «ё» or «е», capitals, emoji, no
punctuation, phones in any spelling; VK comments, map reviews, site forms, e-mails and
call-centre summaries. Stores are looked up by city in stores.csv, so regenerating the
tables keeps the cases valid.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from hub.routing.assign import MemoryAssignmentState
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.routing.types import AppealInput, AuthorInput
from hub.rules_io import read_dir

SAMPLE = Path(__file__).resolve().parents[3] / "routing_rules" / "sample"
NOW = datetime(2025, 11, 12, 8, 30, tzinfo=UTC)  # Wednesday, 11:30 in Moscow


@cache
def sample() -> CompiledRuleSet:
    return compile_files(read_dir(SAMPLE))


@cache
def stores() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((SAMPLE / "stores.csv").read_text(encoding="utf-8"))))


def store_in(city: str) -> dict[str, str]:
    return next(s for s in stores() if s["city"] == city)


def card(city: str, channel: str = "twogis") -> dict[str, Any]:
    """A map review posted on the card of the first store in ``city``."""
    return {"channel": channel, "source": store_in(city)[channel], "kind": "review"}


def with_line() -> dict[str, str]:
    return next(s for s in stores() if s["phone_line"] and s["region"] == "nizhny_novgorod")


def with_community() -> dict[str, str]:
    return next(s for s in stores() if s["vk"])


def unique_address() -> dict[str, str]:
    counts = Counter(s["address"] for s in stores())
    return next(s for s in stores() if counts[s["address"]] == 1 and s["region"] == "tula")


def call(phone: str | None = None, **fields: str) -> dict[str, Any]:
    return {
        "channel": "mango",
        "source": "pbx-main",
        "kind": "call",
        "phone": phone,
        "fields": fields,
    }


def form(**fields: str) -> dict[str, Any]:
    return {"channel": "tilda", "source": "site", "kind": "form", "fields": fields}


EMAIL = {"channel": "email", "source": "info@retail", "kind": "email"}
VK = {"channel": "vk", "source": "club-wall", "kind": "comment"}
TG = {"channel": "telegram", "source": "@market_bot", "kind": "message"}

# (text, where it came from, expected topic, expected region)
CASES: list[tuple[str, dict[str, Any], str | None, str | None]] = [
    # --- vacancies ---------------------------------------------------------------------
    ("Здравствуйте! Есть ли у вас вакансии продавца-кассира в Казани?", VK, "vacancy", "tatarstan"),
    (
        "Добрый день, ищу работу, рассматриваю подработку по выходным. Живу в Тольятти",
        VK,
        "vacancy",
        "samara",
    ),
    ("Требуются ли грузчики? Я из Рязани", VK, "vacancy", "ryazan"),
    (
        "хочу устроиться к вам кассиром, куда отправить резюме? г. Владимир",
        VK,
        "vacancy",
        "vladimir",
    ),
    ("Вакансии в Ярославле есть? Опыт работы продавцом 5 лет", VK, "vacancy", "yaroslavl"),
    ("Сколько у вас зарплата кассира в Воронеже? Интересует вакансия", VK, "vacancy", "voronezh"),
    ("ИЩУ РАБОТУ СРОЧНО!!! НИЖНИЙ НОВГОРОД", VK, "vacancy", "nizhny_novgorod"),
    ("Здравствуйте, я студентка, хочу подработку летом в Уфе 🙏", TG, "vacancy", "bashkortostan"),
    ("Добрый вечер, возьмёте на стажировку? Чебоксары", VK, "vacancy", "chuvashia"),
    (
        "Где пройти собеседование в Саранске? Отправила анкету неделю назад",
        VK,
        "vacancy",
        "mordovia",
    ),
    ("Ищу работу. Мой номер 8 916 000 12 34", VK, "vacancy", None),
    ("Я из Москвы, но сейчас в Казани. Где у вас вакансии?", VK, "vacancy", None),
    # --- rent --------------------------------------------------------------------------
    (
        "Предлагаем в аренду помещение 180 кв.м на первом этаже жилого дома в Курске",
        EMAIL,
        "rent",
        "kursk",
    ),
    ("Собственник. Сдам торговую площадь под магазин, Белгород, центр", VK, "rent", "belgorod"),
    (
        "Рассматриваете ли вы аренду земельного участка в Липецке под строительство?",
        EMAIL,
        "rent",
        "lipetsk",
    ),
    (
        "Хотим открыть ваш магазин в нашем ТЦ в Тамбове, кто занимается арендой?",
        EMAIL,
        "rent",
        "tambov",
    ),
    ("предлагаю помещение в Пензе, 300 квадратных метров, рядом остановка", VK, "rent", "penza"),
    ("Есть помещение под продуктовый в Смоленске, интересно?", TG, "rent", "smolensk"),
    ("Сдаём в аренду нежилое помещение, г. Брянск, ул. Советская", EMAIL, "rent", "bryansk"),
    ("Арендатор съехал, ищем новую сеть для помещения в Костроме", EMAIL, "rent", "kostroma"),
    # --- suppliers ---------------------------------------------------------------------
    (
        "Добрый день! Мы — производитель натуральных молочных продуктов из Тверской области. "
        "Направляем коммерческое предложение и прайс-лист.",
        EMAIL,
        "supplier",
        "tver",
    ),
    (
        "Фермерское хозяйство предлагает поставки овощей в ваши магазины в Рязанской области",
        EMAIL,
        "supplier",
        "ryazan",
    ),
    (
        "Хотим поставлять выпечку собственного производства",
        form(form="supplier", city="Казань"),
        "supplier",
        "tatarstan",
    ),
    (
        "Кто у вас категорийный менеджер по бакалее? Хотим предложить сотрудничество",
        EMAIL,
        "supplier",
        None,
    ),
    (
        "Компания «Вкусный мир» — дистрибьютор снековой продукции. Готовы к сотрудничеству.",
        EMAIL,
        "supplier",
        None,
    ),
    ("Подскажите контакты отдела закупок, мы пекарня из Саратова", VK, "supplier", "saratov"),
    # --- complaints about staff ---------------------------------------------------------
    ("Кассир на Ленина нахамила, швырнула сдачу. Самара.", VK, "complaint_staff", "samara"),
    (
        "Охранник в магазине в Химках грубо разговаривал с моей мамой, безобразие",
        VK,
        "complaint_staff",
        "moscow_oblast",
    ),
    (
        "Продавщица орала на покупателей, ужасное обслуживание! Подольск",
        VK,
        "complaint_staff",
        "moscow_oblast",
    ),
    (
        "Работает одна касса, очередь до конца зала, а сотрудники болтают. Магазин в Люберцах",
        VK,
        "complaint_staff",
        "moscow_oblast",
    ),
    (
        "Администратор отказалась вызвать старшего и нагрубила. Москва, Зеленоград",
        VK,
        "complaint_staff",
        "moscow",
    ),
    ("Меня обсчитали на кассе в Иваново, кассир хамка", VK, "complaint_staff", "ivanovo"),
    (
        "Спасибо вашему охраннику за хамство! Больше не приду. Брянск",
        VK,
        "complaint_staff",
        "bryansk",
    ),
    (
        "Сотрудница на кассе разговаривала по телефону и игнорировала очередь. Липецк",
        VK,
        "complaint_staff",
        "lipetsk",
    ),
    ("В Набережных Челнах кассир грубит покупателям", TG, "complaint_staff", "tatarstan"),
    (
        "Хочу оставить отзыв: продавец в отделе кулинарии грубая, спасибо не сказала",
        VK,
        "complaint_staff",
        None,
    ),
    (
        "Хамское отношение персонала",
        {**card("Казань"), "rating": 1},
        "complaint_staff",
        "tatarstan",
    ),
    (
        "Очереди огромные, работает одна касса",
        {**card("Москва", "yandex"), "rating": 2},
        "complaint_staff",
        "moscow",
    ),
    (
        "Кассирша опять нахамила",
        {"channel": "vk", "source": with_community()["vk"], "kind": "comment"},
        "complaint_staff",
        with_community()["region"],
    ),
    # --- quality -----------------------------------------------------------------------
    (
        "Купила творог, а он просроченный, срок годности истёк три дня назад! Тула",
        VK,
        "complaint_quality",
        "tula",
    ),
    ("В колбасе нашли волос 🤢 антисанитария. Калуга", VK, "complaint_quality", "kaluga"),
    ("Молоко прокисшее, хотя срок до завтра. Ульяновск", VK, "complaint_quality", "ulyanovsk"),
    (
        "Овощи гнилые, картошка вся в гнили, позор! Живу в Энгельсе",
        VK,
        "complaint_quality",
        "saratov",
    ),
    (
        "Отравились салатом из кулинарии, ребёнок в больнице. Стерлитамак",
        VK,
        "complaint_quality",
        "bashkortostan",
    ),
    ("Хлеб с плесенью продали, Ковров", VK, "complaint_quality", "vladimir"),
    ("В курице неприятный запах, явно несвежая. г. Орёл", VK, "complaint_quality", "oryol"),
    ("Йогурт вздулся, а срок годности ещё неделя. Кинешма", TG, "complaint_quality", "ivanovo"),
    ("В пачке гречки жучки и личинки! Новочебоксарск", VK, "complaint_quality", "chuvashia"),
    (
        "Грязно в торговом зале, на полу лужи, тележки грязные. Дзержинск",
        VK,
        "complaint_quality",
        "nizhny_novgorod",
    ),
    ("Опять тухлая рыба на витрине", {**card("Тверь"), "rating": 1}, "complaint_quality", "tver"),
    (
        "Продали испорченный торт",
        {**card("Самара", "yandex"), "rating": 2},
        "complaint_quality",
        "samara",
    ),
    ("Ужас", {**card("Самара", "yandex"), "rating": 1}, "complaint_quality", "samara"),
    ("Орёл — гордая птица. А у вас просрочка на полке", VK, "complaint_quality", None),
    (
        "купила сметану с истекшим сроком годности в магазине №1270",
        VK,
        "complaint_quality",
        "leningrad_oblast",
    ),
    ("ёлки-палки, опять просрочка в Ульяновске", VK, "complaint_quality", "ulyanovsk"),
    (
        "Нашла просроченный йогурт",
        form(region="Московская область"),
        "complaint_quality",
        "moscow_oblast",
    ),
    (
        f"Грязно и воняет в магазине на {unique_address()['address']}",
        VK,
        "complaint_quality",
        "tula",
    ),
    # --- price on the tag and at the till ---------------------------------------------
    (
        "На ценнике 79,99, а на кассе пробили 99,99. Верните разницу! Тверь",
        VK,
        "price_mismatch",
        "tver",
    ),
    (
        "Жёлтый ценник висит, а скидку на кассе не дали. Ярославль",
        VK,
        "price_mismatch",
        "yaroslavl",
    ),
    (
        "Цена на полке не совпадает с ценой в чеке, магазин в Рыбинске",
        VK,
        "price_mismatch",
        "yaroslavl",
    ),
    ("По акции должно быть 2 по цене 1, а пробили оба. Саратов", VK, "price_mismatch", "saratov"),
    ("Переплатила 150 рублей из-за неправильного ценника, Сызрань", VK, "price_mismatch", "samara"),
    ("Почему в чеке другая цена??? Казань", VK, "price_mismatch", "tatarstan"),
    ("Кассир пробила товар два раза, переплатила! Ижевск", VK, "price_mismatch", None),
    (
        "Нормально, но ценники часто не совпадают",
        {**card("Уфа"), "rating": 4},
        "price_mismatch",
        "bashkortostan",
    ),
    (
        "Ценник на кофе не совпадает с ценой на кассе",
        {**form(city="Урюпинск"), "phone": "+7 (4742) 22-33-44"},
        "price_mismatch",
        "lipetsk",
    ),
    # --- loyalty card ------------------------------------------------------------------
    ("Не начислились бонусы за покупку, карта привязана к номеру", VK, "loyalty_card", None),
    ("Как списать баллы с карты лояльности? Кассир сказала нельзя", VK, "loyalty_card", None),
    ("Приложение не видит мою виртуальную карту, Нижнекамск", TG, "loyalty_card", "tatarstan"),
    ("Потеряла бонусную карту, можно восстановить? Балаково", VK, "loyalty_card", "saratov"),
    (
        "Не приходит код подтверждения в приложении, не могу войти в личный кабинет",
        TG,
        "loyalty_card",
        None,
    ),
    ("Промокод из рассылки не работает в приложении. Пенза", VK, "loyalty_card", "penza"),
    # --- assortment wishes ---------------------------------------------------------------
    (
        "Пожалуйста, завезите безглютеновый хлеб в магазин в Обнинске!",
        VK,
        "assortment_wish",
        "kaluga",
    ),
    (
        "Почему перестали продавать кефир Простоквашино? Верните в продажу! Муром",
        VK,
        "assortment_wish",
        "vladimir",
    ),
    ("Очень не хватает овсяного молока в ассортименте. Петрозаводск", VK, "assortment_wish", None),
    ("Хотелось бы больше веганских продуктов, Йошкар-Ола", VK, "assortment_wish", "mari_el"),
    (
        "Пропал с полок любимый сыр, привезите его обратно. Кострома",
        VK,
        "assortment_wish",
        "kostroma",
    ),
    ("Нет в наличии детского питания уже месяц, Старый Оскол", VK, "assortment_wish", "belgorod"),
    ("ПОЧЕМУ НЕТ В НАЛИЧИИ ХЛЕБА БОРОДИНСКОГО??? Г. САМАРА", VK, "assortment_wish", "samara"),
    (
        "Хотелось бы, чтобы завезли больше фермерской продукции",
        {**card("Тверь", "yandex"), "rating": 3},
        "assortment_wish",
        "tver",
    ),
    # --- thanks ------------------------------------------------------------------------
    (
        "Огромное спасибо кассиру Марине, очень вежливая и внимательная! Подольск",
        VK,
        "gratitude",
        "moscow_oblast",
    ),
    (
        "Хочу выразить благодарность сотрудникам магазина в Гатчине за помощь",
        VK,
        "gratitude",
        "leningrad_oblast",
    ),
    (
        "Спасибо, что помогли донести пакеты до машины 🙏 Всеволожск",
        VK,
        "gratitude",
        "leningrad_oblast",
    ),
    (
        "Любимый магазин! Всегда чисто и приветливые продавцы. Кудрово",
        VK,
        "gratitude",
        "leningrad_oblast",
    ),
    (
        "Отличный магазин, рекомендую",
        {**card("Нижний Новгород"), "rating": 5},
        "gratitude",
        "nizhny_novgorod",
    ),
    (
        "Хороший магазин, всегда свежие овощи",
        {**card("Нижний Новгород", "yandex"), "rating": 5},
        "gratitude",
        "nizhny_novgorod",
    ),
    ("Благодарим управляющую за быстрое решение вопроса. Саратов", EMAIL, "gratitude", "saratov"),
    ("Молодцы! Так держать 👍 Мытищи", VK, "gratitude", "moscow_oblast"),
    ("Владимир, спасибо за ответ!", VK, "gratitude", None),
    (
        "Спасибо большое за быструю доставку!",
        {**TG, "phone": "+7 925 111 22 33"},
        "gratitude",
        None,
    ),
    # --- other questions -----------------------------------------------------------------
    ("Во сколько закрывается магазин на Гагарина в Пензе?", VK, "other", "penza"),
    ("Какой режим работы в праздники? Щёлково", VK, "other", "moscow_oblast"),
    ("Есть ли у вас доставка по Казани?", TG, "other", "tatarstan"),
    ("Где купить подарочный сертификат? Санкт-Петербург", VK, "other", "spb"),
    ("Хочу вернуть товар без чека, можно? Питер", VK, "other", "spb"),
    ("Подскажите, есть ли парковка у магазина в Колпино?", VK, "other", "spb"),
    ("Подскажите, вы работаете 31 декабря?", {**TG, "source": "@market_spb"}, "other", "spb"),
    # --- calls: IVR choice, caller's phone, dialled store line ------------------------------
    (
        "Клиентка говорит, что в молоке был посторонний предмет",
        call("+7 (846) 277-10-10", ivr_choice="1"),
        "complaint_quality",
        "samara",
    ),
    (
        "Звонит по поводу работы, хочет устроиться продавцом",
        call("8 (8352) 55-66-77", ivr_choice="3"),
        "vacancy",
        "chuvashia",
    ),
    (
        "Вопрос по бонусной карте, не начислились баллы",
        call("+7 916 555 44 33", ivr_choice="2"),
        "loyalty_card",
        None,
    ),
    (
        "Клиент спрашивает режим работы магазина в праздники",
        call("8-495-600-12-34"),
        "other",
        "moscow",
    ),
    (
        "Звонок на линию магазина: клиент жалуется на грубость кассира",
        call("+7 999 222 33 44", line=with_line()["phone_line"]),
        "complaint_staff",
        "nizhny_novgorod",
    ),
    ("Уточняет про вакансии", call("+7 903 111 22 33", ivr_region="3"), "vacancy", "spb"),
    ("Хотим предложить помещение в аренду", call("+7 (347) 246-11-22"), "rent", "bashkortostan"),
    (
        "жалоба: в курице запах, несвежая",
        call("8 (4722) 33-22-11"),
        "complaint_quality",
        "belgorod",
    ),
    ("Молчание в трубке", call("8 (8412) 11-22-33", ivr_choice="1"), "complaint_quality", "penza"),
    ("Благодарит продавца за вежливость", call("+7 (4862) 44-55-66"), "gratitude", "oryol"),
    # --- site forms ----------------------------------------------------------------------
    (
        "Хочу работать у вас, график 2/2",
        form(form="vacancy", city="Ульяновск"),
        "vacancy",
        "ulyanovsk",
    ),
    (
        "Помещение 120 м2, первый этаж",
        form(form="rent", city="Нижний Новгород"),
        "rent",
        "nizhny_novgorod",
    ),
    (
        "Кассир отказалась принять купюру и нахамила",
        form(city="Воронеж"),
        "complaint_staff",
        "voronezh",
    ),
    # --- nothing to go on: stays unknown --------------------------------------------------
    ("Здравствуйте", VK, None, None),
    ("👍👍👍", VK, None, None),
    ("Где ближайший магазин?", {**TG, "source": "@market_kazan"}, None, "tatarstan"),
    ("Ответьте в личку", {**VK, "phone": "8 (812) 300-00-00"}, None, "spb"),
]


def _appeal(text: str, where: dict[str, Any]) -> AppealInput:
    where = dict(where)
    author = AuthorInput(name="Покупатель", phone=where.pop("phone", None))
    return AppealInput(text=text, author=author, **where)


def test_enough_cases() -> None:
    assert len(CASES) >= 100
    assert len({text for text, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("text", "where", "topic", "region"), CASES, ids=[c[0][:40] for c in CASES]
)
def test_topic_and_region(
    text: str, where: dict[str, Any], topic: str | None, region: str | None
) -> None:
    decision = sample().decide(_appeal(text, where), now=NOW, state=MemoryAssignmentState())
    trace = "\n".join(f"{t.step}: {t.message}" for t in decision.trace)
    assert (decision.topic, decision.region) == (topic, region), trace
    assert decision.filtered is None
    assert decision.assignee is not None and decision.target is not None, trace
    if topic is None:
        assert "тема не определена" in decision.tags


@pytest.mark.parametrize(
    ("text", "where", "filter_id"),
    [
        ("Участвую! Репост сделал 🎁 #СемейныйРынокДарит", VK, "contest"),
        ("+++", VK, "contest"),
        ("я участвую", {**VK, "channel": "ok"}, "contest"),
        ("Лёгкий доход в интернете, пиши в личку", VK, "spam"),
        ("Подписывайтесь на мой канал про скидки", TG, "spam"),
        ("Когда будет завоз?", {**VK, "phone": "8 999 111-22-33"}, "blacklist"),
    ],
)
def test_noise_is_filtered(text: str, where: dict[str, Any], filter_id: str) -> None:
    decision = sample().decide(_appeal(text, where), now=NOW, state=MemoryAssignmentState())
    assert decision.filtered is not None
    assert decision.trace[0].rule == filter_id


def test_contest_words_in_a_real_question_are_not_filtered() -> None:
    text = "Участвую в программе лояльности, но баллы не начислили"
    decision = sample().decide(_appeal(text, VK), now=NOW, state=MemoryAssignmentState())
    assert decision.filtered is None and decision.topic == "loyalty_card"
