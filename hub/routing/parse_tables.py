"""stores.csv and employees.csv: the two tables admins keep in a spreadsheet."""

from __future__ import annotations

import re

from hub.routing.model import Employee, Store, Where
from hub.routing.schedule import parse_absences, parse_hours
from hub.routing.sources import Problems, load_csv
from hub.routing.text import parse_phone

STORE_COLUMNS = ("id", "region", "city", "address")
STORE_SOURCE_COLUMNS = ("vk", "twogis", "yandex")  # column name = channel name
EMPLOYEE_COLUMNS = ("id", "name", "bitrix_user_id", "department")
_LIST_SPLIT = re.compile(r"[\s,;]+")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def cell_list(value: str) -> list[str]:
    return [part for part in _LIST_SPLIT.split(value.strip()) if part]


def parse_stores(file: str, text: str, problems: Problems) -> list[Store]:
    header, rows = load_csv(file, text, problems, required=STORE_COLUMNS)
    stores: list[Store] = []
    for row in rows:
        store_id = row.get("id")
        if not store_id:
            problems.error(file, row.line, "магазин без id")
            continue
        line = row.get("phone_line")
        if line and parse_phone(line) is None:
            problems.error(file, row.line, f"магазин {store_id}: «{line}» — не телефонный номер")
            line = ""
        stores.append(
            Store(
                id=store_id,
                region=row.get("region"),
                city=row.get("city"),
                address=row.get("address"),
                sources={c: row.get(c) for c in STORE_SOURCE_COLUMNS if row.get(c)},
                phone_line=line,
                where=Where(file, row.line),
            )
        )
    return stores


def parse_employees(file: str, text: str, problems: Problems) -> list[Employee]:
    _header, rows = load_csv(file, text, problems, required=EMPLOYEE_COLUMNS)
    employees: list[Employee] = []
    for row in rows:
        emp_id = row.get("id")
        if not emp_id or not _ID_RE.match(emp_id):
            problems.error(file, row.line, f"сотрудник: недопустимый id «{emp_id}»")
            continue
        what = f"сотрудник {emp_id}"
        bitrix_raw = row.get("bitrix_user_id")
        bitrix_id: int | None = None
        if not bitrix_raw:
            problems.error(file, row.line, f"{what}: нет bitrix_user_id — сделку некому назначить")
        elif not bitrix_raw.isdigit() or int(bitrix_raw) == 0:
            problems.error(file, row.line, f"{what}: bitrix_user_id «{bitrix_raw}» — не число")
        else:
            bitrix_id = int(bitrix_raw)
        try:
            hours = parse_hours(row.get("hours"))
        except ValueError as exc:
            problems.error(file, row.line, f"{what}: часы работы: {exc}")
            hours = []
        try:
            absences = parse_absences(row.get("absences"))
        except ValueError as exc:
            problems.error(file, row.line, f"{what}: отсутствия: {exc}")
            absences = []
        capacity: int | None = None
        raw_capacity = row.get("capacity")
        if raw_capacity:
            if raw_capacity.isdigit() and int(raw_capacity) > 0:
                capacity = int(raw_capacity)
            else:
                problems.error(file, row.line, f"{what}: capacity «{raw_capacity}» — целое > 0")
        name = row.get("name")
        if not name:
            problems.error(file, row.line, f"{what}: нет имени")
        employees.append(
            Employee(
                id=emp_id,
                name=name or emp_id,
                bitrix_user_id=bitrix_id,
                department=row.get("department"),
                position=row.get("position"),
                regions=cell_list(row.get("regions")) or ["*"],
                topics=cell_list(row.get("topics")) or ["*"],
                hours=hours,
                hours_text=row.get("hours"),
                timezone=row.get("timezone"),
                absences=absences,
                capacity=capacity,
                where=Where(file, row.line),
            )
        )
    return employees
