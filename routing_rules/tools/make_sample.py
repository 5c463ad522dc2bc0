"""Generates the large tables of routing_rules/sample: stores.csv, employees.csv, bitrix24.yaml.

Deterministic (fixed seed): running it again gives the same bytes, so the committed files
and the script never drift apart. regions.yaml is the input; the YAML files that admins
write by hand (topics, departments, pools, filters, rules) are not touched.

    .venv/bin/python routing_rules/tools/make_sample.py [routing_rules/sample]
"""

from __future__ import annotations

import csv
import io
import random
import sys
from pathlib import Path

import yaml

SEED = 20250901
STORES_TOTAL = 700
# Rough weight of each region in the chain (store counts are scaled to STORES_TOTAL).
STORE_WEIGHTS = {
    "moscow": 120, "moscow_oblast": 90, "spb": 70, "leningrad_oblast": 28, "tver": 15,
    "yaroslavl": 18, "vladimir": 15, "ivanovo": 12, "kostroma": 8, "nizhny_novgorod": 35,
    "ryazan": 15, "tula": 18, "kaluga": 12, "smolensk": 10, "bryansk": 12, "oryol": 8,
    "kursk": 12, "belgorod": 16, "voronezh": 28, "lipetsk": 12, "tambov": 10, "penza": 14,
    "saratov": 20, "samara": 35, "ulyanovsk": 14, "tatarstan": 40, "chuvashia": 12,
    "mari_el": 8, "mordovia": 8, "bashkortostan": 32,
}  # fmt: skip


def _names(text: str) -> list[str]:
    return text.split()


STREETS = [
    ("ул.", "Ленина"), ("ул.", "Советская"), ("ул.", "Мира"), ("ул.", "Гагарина"),
    ("ул.", "Кирова"), ("ул.", "Пушкина"), ("ул.", "Лермонтова"), ("ул.", "Садовая"),
    ("ул.", "Молодёжная"), ("ул.", "Школьная"), ("ул.", "Центральная"), ("пр-т", "Победы"),
    ("ул.", "Октябрьская"), ("ул.", "Первомайская"), ("ул.", "Комсомольская"),
    ("ул.", "Чапаева"), ("ш.", "Московское"), ("ул.", "Строителей"), ("ул.", "Заводская"),
    ("ул.", "Юбилейная"), ("ул.", "Свердлова"), ("ул.", "Горького"), ("ул.", "Калинина"),
    ("ул.", "Куйбышева"), ("ул.", "Фрунзе"), ("ул.", "Маяковского"), ("ул.", "Жукова"),
    ("пр-т", "Космонавтов"), ("ул.", "Ломоносова"), ("ул.", "Чкалова"), ("ул.", "Некрасова"),
    ("ул.", "Зелёная"), ("ул.", "Лесная"), ("ул.", "Солнечная"), ("б-р", "Юности"),
    ("ул.", "Пионерская"), ("ул.", "Набережная"), ("ул.", "Гоголя"), ("ул.", "Суворова"),
    ("ул.", "Тургенева"),
]  # fmt: skip
MALE = _names(
    """
    Александр Алексей Андрей Дмитрий Евгений Иван Игорь Кирилл Максим Михаил Никита Олег
    Павел Роман Сергей Артём Владислав Денис Илья Константин
"""
)
FEMALE = _names(
    """
    Анна Анастасия Валентина Виктория Дарья Екатерина Елена Ирина Ксения Марина Мария
    Наталья Ольга Светлана Татьяна Юлия Алина Вера Галина Людмила
"""
)
PATRONYMICS = [
    ("Александрович", "Александровна"), ("Алексеевич", "Алексеевна"), ("Андреевич", "Андреевна"),
    ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"), ("Геннадьевич", "Геннадьевна"),
    ("Дмитриевич", "Дмитриевна"), ("Евгеньевич", "Евгеньевна"), ("Иванович", "Ивановна"),
    ("Игоревич", "Игоревна"), ("Михайлович", "Михайловна"), ("Николаевич", "Николаевна"),
    ("Олегович", "Олеговна"), ("Павлович", "Павловна"), ("Петрович", "Петровна"),
    ("Сергеевич", "Сергеевна"), ("Юрьевич", "Юрьевна"), ("Анатольевич", "Анатольевна"),
    ("Борисович", "Борисовна"), ("Васильевич", "Васильевна"),
]  # fmt: skip
SURNAMES = _names(
    """
    Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов
    Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев
    Макаров Никитин Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв
    Сергеев Кузьмин Фролов Александров Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков
    Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков Баранов Филиппов Комаров
    Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов Крылов
    Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов
    Савельев Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин
    Исаев Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов Филатов Пономарёв
    Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов Соболев
    Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов
    Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов
    Анисимов Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов
    Прокофьев Харитонов Князев Цветков Левин Митрофанов Воронов Аксёнов Софронов Мальцев
    Логинов Горшков Савин Краснов Майоров Демидов Елисеев Рыбаков Сафонов Плотников Демин
    Хохлов Фадеев Молчанов Игнатов Литвинов Ершов Ушаков Дементьев Рябов Мухин Калашников
    Леонтьев Лобанов Кузин Корнилов Евдокимов Бородин Платонов Некрасов Балашов Бобров
    Жданов Блинов Игнатьев Коротков Муравьёв Крюков Беляков Богомолов Дроздов Лавров Зуев
    Петухов Ларин Никулин Серов Терентьев Зотов Устинов Фокин Самойлов Константинов Сахаров
    Шишкин Самсонов Черкасов Чистяков Носов Спиридонов Карасёв Авдеев Воронцов Зверев
    Владимиров Селезнёв Нечаев Кудряшов Седов Фирсов Андрианов Панин Головин Терехов Ульянов
    Шестаков Агеев Никонов Селиванов Баженов Гордеев Кожевников Пахомов Зимин Костин Широков
    Филимонов Ларионов Овсянников Сазонов Суворов Нефёдов Корнилов Любимов Львов Горбачёв
    Копылов Лукин Токарев Кулешов Шилов Большаков Панкратов Родин Шаповалов Покровский
    Бочаров Никольский Маркин Горелов Агафонов Березин Ермолаев Зубков Куприянов Трифонов
    Масленников Круглов Третьяков Колосов Рожков Артамонов Шмелёв Лаптев Лапшин Федосеев
    Зиновьев Зорин Уткин Столяров Зубов Ткачёв Дорофеев Антипов Завьялов Свиридов Золотарёв
    Кулаков Мещеряков Макеев Дьяконов Гуляев Петровский Бондарев Поздняков Панфилов Кочетков
    Суханов Рыжов Старостин Калмыков Колесов Золотов Кравцов Субботин Шубин Щукин Лосев
    Виноградов Лыков Стрелков Мартынов Дьячков
"""
)
# The landline code of each region's main city (a store's line is dialled with it).
MAIN_CODES = {
    "moscow": "495", "moscow_oblast": "496", "spb": "812", "leningrad_oblast": "81371",
    "tver": "4822", "yaroslavl": "4852", "vladimir": "4922", "ivanovo": "4932",
    "kostroma": "4942", "nizhny_novgorod": "831", "ryazan": "4912", "tula": "4872",
    "kaluga": "4842", "smolensk": "4812", "bryansk": "4832", "oryol": "4862", "kursk": "4712",
    "belgorod": "4722", "voronezh": "473", "lipetsk": "4742", "tambov": "4752", "penza": "8412",
    "saratov": "8452", "samara": "846", "ulyanovsk": "8422", "tatarstan": "843",
    "chuvashia": "8352", "mari_el": "8362", "mordovia": "8342", "bashkortostan": "347",
}  # fmt: skip
ALL = "*"
WEEKDAYS = "пн-пт 09:00-18:00"


def main(target: Path) -> None:
    regions = yaml.safe_load((target / "regions.yaml").read_text(encoding="utf-8"))["regions"]
    rng = random.Random(SEED)
    stores = make_stores(regions, rng)
    employees = make_employees(regions, stores, rng)
    write_csv(target / "stores.csv", STORE_HEADER, stores)
    write_csv(target / "employees.csv", EMPLOYEE_HEADER, employees)
    (target / "bitrix24.yaml").write_bytes(bitrix24_yaml(employees).encode("utf-8"))
    print(f"{len(stores)} stores, {len(employees)} employees -> {target}")


STORE_HEADER = ["id", "region", "city", "address", "vk", "twogis", "yandex", "phone_line"]
EMPLOYEE_HEADER = ["id", "name", "bitrix_user_id", "department", "position", "regions"]
EMPLOYEE_HEADER += ["topics", "hours", "timezone", "absences", "capacity"]


def scaled_counts() -> dict[str, int]:
    total = sum(STORE_WEIGHTS.values())
    counts = {code: max(4, round(w * STORES_TOTAL / total)) for code, w in STORE_WEIGHTS.items()}
    counts["moscow"] += STORES_TOTAL - sum(counts.values())
    return counts


def make_stores(regions: dict, rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    number = 1001
    for code, count in scaled_counts().items():
        region = regions[code]
        cities = [c if isinstance(c, str) else c["name"] for c in region["cities"]]
        weights = [max(1.0, 10.0 / (i + 1) ** 1.2) for i in range(len(cities))]
        weights[0] = max(weights[0], sum(weights[1:]))  # the capital holds about half
        used: set[tuple[str, str]] = set()
        area = MAIN_CODES[code]
        for _ in range(count):
            city = rng.choices(cities, weights)[0]
            while True:
                kind, street = rng.choice(STREETS)
                house = str(rng.randint(1, 180)) + rng.choice(["", "", "", "", "а", "к2"])
                if (city, f"{street} {house}") not in used:
                    used.add((city, f"{street} {house}"))
                    break
            digits = f"{rng.randint(0, 10 ** (10 - len(area)) - 1):0{10 - len(area)}d}"
            digits = str(rng.randint(2, 7)) + digits[1:]  # local numbers do not start with 0/1
            phone = f"+7 ({area}) {digits[:-4]}-{digits[-4:-2]}-{digits[-2:]}"
            rows.append(
                {
                    "id": str(number),
                    "region": code,
                    "city": city,
                    "address": f"{kind} {street}, {house}",
                    "vk": f"club22{number:07d}" if number % 23 == 0 else "",
                    "twogis": f"70000001{rng.randint(10**8, 10**9 - 1)}",
                    "yandex": str(rng.randint(10**9, 10**10 - 1)),
                    "phone_line": phone if rng.random() < 0.4 else "",
                }
            )
            number += 1
    return rows


class People:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.bitrix = 10

    def name(self) -> str:
        while True:
            female = self.rng.random() < 0.6
            first = self.rng.choice(FEMALE if female else MALE)
            male_p, female_p = self.rng.choice(PATRONYMICS)
            surname = self.rng.choice(SURNAMES)
            base = female_p if female else male_p
            if female:
                surname = surname[:-2] + "ая" if surname.endswith("ий") else surname + "а"
            full = f"{surname} {first} {base}"
            if full not in self.used:
                self.used.add(full)
                return full

    def row(self, emp_id: str, department: str, position: str, **cells: str) -> dict[str, str]:
        self.bitrix += 1
        absences = ""
        if self.rng.random() < 0.1:
            month = self.rng.randint(6, 20)
            year, month = 2025 + (month - 1) // 12, (month - 1) % 12 + 1
            day = self.rng.randint(1, 14)
            absences = f"{year}-{month:02d}-{day:02d}..{year}-{month:02d}-{day + 13:02d}"
        row = {
            "id": emp_id,
            "name": cells.pop("name", "") or self.name(),
            "bitrix_user_id": str(self.bitrix),
            "department": department,
            "position": position,
            "regions": ALL,
            "topics": ALL,
            "hours": WEEKDAYS,
            "timezone": "Europe/Moscow",
            "absences": absences,
            "capacity": "",
        }
        row.update(cells)
        return row


RENT_GROUPS = [
    "moscow", "moscow_oblast", "spb leningrad_oblast", "tver yaroslavl vladimir",
    "ivanovo kostroma nizhny_novgorod", "ryazan tula kaluga", "smolensk bryansk oryol",
    "kursk belgorod voronezh", "lipetsk tambov penza", "saratov samara ulyanovsk",
    "tatarstan chuvashia mari_el mordovia bashkortostan",
]  # fmt: skip
BIG_REGIONS = {"moscow": 3, "moscow_oblast": 3, "spb": 2, "tatarstan": 2, "samara": 2}
BIG_REGIONS |= {"nizhny_novgorod": 2, "bashkortostan": 2}


def make_employees(regions: dict, stores: list[dict[str, str]], rng: random.Random) -> list[dict]:
    p = People(rng)
    tz = {code: r["timezone"] for code, r in regions.items()}
    rows: list[dict[str, str]] = []
    add = rows.append
    add(p.row("reserve-001", "reserve", "Резервная очередь (служебная учётная запись)",
              name="Резервная очередь", hours="круглосуточно"))  # fmt: skip
    # Hotline: head, four senior operators who take the triage queue, day and night shifts.
    add(p.row("hot-001", "hotline", "Руководитель горячей линии"))
    for i in range(2, 6):
        add(p.row(f"hot-{i:03d}", "hotline", "Старший оператор", hours="пн-пт 08:00-20:00"))
    for i in range(6, 42):
        night = i % 4 == 0
        add(p.row(f"hot-{i:03d}", "hotline", "Оператор горячей линии",
                  hours="ежедневно 20:00-08:00" if night else "ежедневно 08:00-20:00",
                  capacity="40"))  # fmt: skip
    # HR: head, central recruiters for any region, then recruiters per region.
    add(p.row("hr-001", "hr", "Директор по персоналу"))
    for i in range(2, 5):
        add(p.row(f"hr-{i:03d}", "hr", "Рекрутер (центральный подбор)", regions="moscow",
                  topics="vacancy"))  # fmt: skip
    n = 5
    for code in regions:
        for _ in range(BIG_REGIONS.get(code, 1)):
            add(p.row(f"hr-{n:03d}", "hr", "Региональный рекрутер", regions=code,
                      topics="vacancy", timezone=tz[code]))  # fmt: skip
            n += 1
    add(p.row("rent-001", "rent", "Директор по развитию"))
    for i, group in enumerate(RENT_GROUPS, start=2):
        first = group.split()[0]
        add(p.row(f"rent-{i:03d}", "rent", "Менеджер по аренде", regions=group,
                  topics="rent", timezone=tz[first]))  # fmt: skip
    add(p.row("buy-001", "purchasing", "Директор по закупкам"))
    for i in range(2, 16):
        topic = "supplier" if i < 10 else "assortment_wish"
        position = "Менеджер по работе с поставщиками" if i < 10 else "Категорийный менеджер"
        add(p.row(f"buy-{i:03d}", "purchasing", position, topics=topic, capacity="30"))
    add(p.row("qc-001", "quality", "Руководитель службы качества"))
    for i in (2, 3):
        add(p.row(f"qc-{i:03d}", "quality", "Эксперт по качеству (центр)", regions="moscow"))
    n = 4
    for group in RENT_GROUPS:
        for _ in range(2):
            first = group.split()[0]
            add(p.row(f"qc-{n:03d}", "quality", "Специалист по качеству", regions=group,
                      topics="complaint_quality price_mismatch", timezone=tz[first],
                      capacity="30"))  # fmt: skip
            n += 1
    add(p.row("mgr-001", "stores", "Операционный директор"))
    per_region: dict[str, int] = {}
    for store in stores:
        per_region[store["region"]] = per_region.get(store["region"], 0) + 1
    n = 2
    for code in regions:
        for _ in range(max(2, round(per_region[code] / 6.5))):
            add(p.row(f"mgr-{n:03d}", "stores", "Территориальный управляющий", regions=code,
                      topics="complaint_staff price_mismatch gratitude",
                      hours="пн-сб 09:00-19:00", timezone=tz[code], capacity="30"))  # fmt: skip
            n += 1
    add(p.row("smm-001", "marketing", "Руководитель маркетинга"))
    for i in range(2, 16):
        hours = "ежедневно 09:00-21:00" if i % 2 else "пн-пт 10:00-19:00"
        add(p.row(f"smm-{i:03d}", "marketing", "SMM-менеджер", topics="gratitude", hours=hours))
    add(p.row("loy-001", "loyalty", "Руководитель программы лояльности"))
    for i in range(2, 16):
        hours = "пн-пт 09:00-18:00; сб 10:00-16:00" if i % 3 == 0 else WEEKDAYS
        add(p.row(f"loy-{i:03d}", "loyalty", "Специалист программы лояльности",
                  topics="loyalty_card", hours=hours))  # fmt: skip
    return rows


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


PIPELINES = [
    (0, "Общая", [("NEW", "Новое обращение"),
                  ("UC_TRIAGE", "Разбор: тема или регион не определены"),
                  ("EXECUTING", "В работе"), ("UC_OVERDUE", "Просрочено"), ("WON", "Решено"),
                  ("LOSE", "Закрыто без решения")]),
    (1, "Жалобы и качество", [("C1:NEW", "Новая жалоба"), ("C1:UC_PRICE", "Цена и ценник"),
                              ("C1:EXECUTING", "Разбирается"), ("C1:UC_OVERDUE", "Просрочено"),
                              ("C1:WON", "Решено"),
                              ("C1:LOSE", "Не подтвердилось")]),
    (2, "Подбор персонала", [("C2:NEW", "Новый отклик"), ("C2:UC_INTERVIEW", "Собеседование"),
                             ("C2:UC_OVERDUE", "Просрочено"), ("C2:WON", "Принят"),
                             ("C2:LOSE", "Отказ")]),
    (3, "Аренда и развитие", [("C3:NEW", "Новое предложение"), ("C3:EXECUTING", "Рассмотрение"),
                              ("C3:UC_OVERDUE", "Просрочено"), ("C3:WON", "Договор"),
                              ("C3:LOSE", "Отказ")]),
    (4, "Закупки и ассортимент", [("C4:NEW", "Новое"), ("C4:UC_WISH", "Пожелание по ассортименту"),
                                  ("C4:UC_OVERDUE", "Просрочено"), ("C4:WON", "Принято"),
                                  ("C4:LOSE", "Отклонено")]),
    (5, "Программа лояльности", [("C5:NEW", "Новое"), ("C5:UC_OVERDUE", "Просрочено"),
                                 ("C5:WON", "Решено"), ("C5:LOSE", "Закрыто")]),
    (6, "Отзывы и SMM", [("C6:NEW", "Новый отзыв"), ("C6:UC_THANKS", "Благодарность"),
                         ("C6:UC_OVERDUE", "Просрочено"), ("C6:WON", "Обработан"),
                         ("C6:LOSE", "Закрыт")]),
]  # fmt: skip
LEAD_STATUSES = [("NEW", "Не обработан"), ("IN_PROCESS", "В работе"), ("PROCESSED", "Обработан"),
                 ("JUNK", "Некачественный лид"), ("CONVERTED", "Сконвертирован")]  # fmt: skip


def bitrix24_yaml(employees: list[dict[str, str]]) -> str:
    q = _quote
    lines = [
        "# Что должно быть на портале Битрикс24, чтобы цели правил существовали.",
        "# Сгенерировано routing_rules/tools/make_sample.py; по этому файлу заполняется",
        "# песочница портала: воронки сделок (crm.category), стадии (crm.status DEAL_STAGE_n),",
        "# статусы лидов (STATUS) и пользователи (user.get) с их id.",
        "portal: sandbox",
        "pipelines:",
    ]
    for pid, name, stages in PIPELINES:
        lines += [f"  - id: {pid}", f"    name: {q(name)}", "    stages:"]
        lines += [f"      - {{id: {q(sid)}, name: {q(sname)}}}" for sid, sname in stages]
    lines.append("lead_statuses:")
    lines += [f"  - {{id: {q(sid)}, name: {q(sname)}}}" for sid, sname in LEAD_STATUSES]
    lines += ["users:", '  - {id: 1, name: "Администратор портала", department: admin}']
    for e in employees:
        last, _, first = e["name"].partition(" ")
        lines.append(
            f"  - {{id: {e['bitrix_user_id']}, name: {q(e['name'])}, last_name: {q(last)}, "
            f"first_name: {q(first)}, email: {q(e['id'] + '@retail-sample.ru')}, "
            f"department: {e['department']}, position: {q(e['position'])}}}"
        )
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "sample")
