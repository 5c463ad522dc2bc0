"""Editing one row of stores.csv or employees.csv without touching the others' bytes.

Admins keep these tables in Excel; a version stores them verbatim. An edit re-serialises only
the changed row (same delimiter, line ending and BOM), so the version diff shows one line.
Spreadsheet uploads (CSV in UTF-8 or Windows-1251, or XLSX) become the whole file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from openpyxl import Workbook, load_workbook

from hub.routing.sources import Problem


@dataclass
class Record:
    start: int  # first line, 1-based, as the checker reports it
    raw: str  # the record's exact text, line ending included
    cells: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.cells.get("id", "").strip()


class CsvDoc:
    def __init__(self, text: str) -> None:
        self.bom = "\ufeff" if text.startswith("\ufeff") else ""
        body = text[len(self.bom) :]
        self.newline = "\r\n" if "\r\n" in body[:4096] else "\n"
        lines = body.splitlines(keepends=True)
        first = lines[0] if lines else ""
        self.delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(lines, delimiter=self.delimiter)
        self.header: list[str] = [h.strip() for h in next(reader, [])]
        self.head_raw = "".join(lines[: reader.line_num])
        self.records: list[Record] = []
        done = reader.line_num
        for cells in reader:
            raw = "".join(lines[done : reader.line_num])
            record = Record(done + 1, raw, dict(zip(self.header, cells, strict=False)))
            done = reader.line_num
            self.records.append(record)

    def rows(self) -> list[Record]:
        return [r for r in self.records if any(v.strip() for v in r.cells.values())]

    def find(self, row_id: str) -> Record | None:
        return next((r for r in self.records if r.id == row_id), None)

    def line_of(self, row_id: str) -> int | None:
        record = self.find(row_id)
        return record.start if record else None

    def _row_text(self, cells: dict[str, str]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator=self.newline)
        writer.writerow([cells.get(h, "") for h in self.header])
        return out.getvalue()

    def text(self, records: list[Record] | None = None) -> str:
        parts = [self.bom, self.head_raw]
        for record in self.records if records is None else records:
            if parts[-1] and not parts[-1].endswith(("\n", "\r")):
                parts.append(self.newline)
            parts.append(record.raw)
        return "".join(parts)

    def replaced(self, row_id: str, cells: dict[str, str]) -> str:
        new = Record(0, self._row_text(cells), cells)
        return self.text([new if r.id == row_id else r for r in self.records])

    def appended(self, cells: dict[str, str]) -> str:
        return self.text([*self.records, Record(0, self._row_text(cells), cells)])

    def removed(self, row_id: str) -> str:
        return self.text([r for r in self.records if r.id != row_id])


# Which column a checker message is about: the first needle found decides.
_COLUMN_NEEDLES = (
    ("bitrix_user_id", "bitrix_user_id"),
    ("сделку некому", "bitrix_user_id"),
    ("пользователя ", "bitrix_user_id"),
    ("часы работы", "hours"),
    ("отсутствия", "absences"),
    ("capacity", "capacity"),
    ("часовой пояс", "timezone"),
    ("нет имени", "name"),
    ("отдел", "department"),
    ("тема", "topics"),
    ("город", "city"),
    ("регион", "region"),
    ("адрес", "address"),
    ("линия", "phone_line"),
    ("телефонный номер", "phone_line"),
    ("vk:", "vk"),
    ("twogis:", "twogis"),
    ("yandex:", "yandex"),
    ("id", "id"),
)


def column_of(message: str, header: list[str]) -> str | None:
    for needle, column in _COLUMN_NEEDLES:
        if needle in message:
            if column == "region" and "regions" in header:
                return "regions"
            return column if column in header else None
    return None


def problems_by_line(problems: list[Problem], file: str) -> dict[int, list[Problem]]:
    out: dict[int, list[Problem]] = {}
    for p in problems:
        if p.file == file:
            out.setdefault(p.line, []).append(p)
    return out


class UploadError(Exception):
    """The uploaded file is not a readable table."""


def upload_to_text(filename: str, data: bytes) -> str:
    """A spreadsheet upload as CSV text: XLSX by its content, else CSV in UTF-8 or cp1251."""
    if data[:2] == b"PK":
        return _xlsx_to_csv(data)
    for encoding in ("utf-8", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UploadError(f"{filename}: не UTF-8 и не Windows-1251")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_to_csv(data: bytes) -> str:
    """Every sheet row becomes a line, blank ones too, so line N is spreadsheet row N."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise UploadError(f"не удалось прочитать XLSX: {exc}") from exc
    sheet = book.worksheets[0]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in sheet.iter_rows(values_only=True):
        writer.writerow([_cell(v) for v in row])
    book.close()
    return out.getvalue()


def to_xlsx(doc: CsvDoc, title: str) -> bytes:
    """All cells as text, so Excel keeps long ids (2GIS cards) and leading zeros intact."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(doc.header)
    for record in doc.rows():
        sheet.append([record.cells.get(h, "") for h in doc.header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
