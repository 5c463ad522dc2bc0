"""The directory editor: every entity of the working draft as a list and a form, spreadsheet
import and export for stores and employees, and any file as text. Every change goes into the
working draft (``hub/ui/drafts.py``); what the checker says lands next to the field or line."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from ruamel.yaml.comments import CommentedMap
from starlette.concurrency import run_in_threadpool

from hub.db import session_scope
from hub.models import RuleSetVersion
from hub.storage import rulesets
from hub.storage.users import SessionUser
from hub.ui import dir_csv, dir_forms, drafts, rule_form
from hub.ui.dir_choices import ENTITY_LABELS, choices_of
from hub.ui.dir_yaml import SECTIONS, YamlDoc
from hub.ui.i18n import N_
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/rules/draft")
TABLES = {"stores": "stores.csv", "employees": "employees.csv"}
PAGE = 50


def _load(request: Request) -> tuple[RuleSetVersion | None, RuleSetVersion | None]:
    """(working draft, published version): the editor shows the draft, else the version in
    force read-only."""
    with session_scope(request.app.state.engine, read_only=True) as s:
        return drafts.working_draft(s), rulesets.get_published(s)


def shown_version(request: Request) -> RuleSetVersion:
    """The version the editor shows (the draft, else the one in force); 409 when neither."""
    draft, published = _load(request)
    version = draft or published
    if version is None:
        raise HTTPException(409, "справочник не загружен")
    return version


def _section(section: str) -> str:
    if section not in TABLES and section not in SECTIONS:
        raise HTTPException(404, f"нет раздела {section}")
    return section


def _file_of(section: str) -> str:
    return TABLES.get(section) or SECTIONS[section].file


@router.get("/{section}")
def entity_list(
    request: Request,
    section: str,
    q: str = "",
    page: int = 0,
    viewer: SessionUser = Depends(require("rules.read")),
) -> Response:
    _section(section)
    draft, published = _load(request)
    version = draft or published
    if version is None:
        raise HTTPException(409, "справочник не загружен")
    text = version.files.get(_file_of(section), "")
    needle = q.strip().lower()
    if section in TABLES:
        doc = dir_csv.CsvDoc(text)
        rows = [r for r in doc.rows() if not needle or needle in r.raw.lower()]
        items: list[Any] = rows[page * PAGE : (page + 1) * PAGE]
        header, total = doc.header, len(rows)
    else:
        ydoc = YamlDoc(text, SECTIONS[section])
        items = []
        for key in ydoc.ids():
            entity = ydoc.get(key)
            title = next((str(entity[k]) for k in dir_forms.TITLE_KEYS if entity.get(k)), "")
            if not needle or needle in key.lower() or needle in title.lower():
                items.append((key, title, ydoc.start(key)[0] + 1))
        header, total = [], len(items)
    problems = [p for p in drafts.problems_of(version.files) if p.file == _file_of(section)]
    return render(
        request, "directory/list.html", nav="rules", section=section, version=version,
        draft=draft, items=items, header=header, total=total, page=page, q=q, pages=PAGE,
        problems=problems, file=_file_of(section), notice=request.query_params.get("notice"),
    )  # fmt: skip


def _form_values(section: str, entity: dict[str, Any] | None) -> dict[str, Any]:
    if section in TABLES:
        return {k: str(v) for k, v in (entity or {}).items()}
    specs = dir_forms.specs_for(section, entity)
    return {s.name: dir_forms.show(s, (entity or {}).get(s.name)) for s in specs}


def _submitted(section: str, version: RuleSetVersion, key: str, form: dict[str, str]) -> Any:
    """The inputs as the admin sent them, shaped like ``_form_values`` (for a 422 page)."""
    if section in TABLES:
        return form
    ydoc = YamlDoc(version.files.get(SECTIONS[section].file, ""), SECTIONS[section])
    entity = ydoc.get(key) if key and key in ydoc.ids() else None
    values = {s.name: dir_forms.show_form(s, form) for s in dir_forms.specs_for(section, entity)}
    return {**values, "_new_key": form.get("_new_key", "")}


def _editor(
    request: Request, section: str, version: RuleSetVersion, key: str, values: dict[str, Any],
    errors: dict[str, list[str]], general: list[str], status: int = 200,
) -> Response:  # fmt: skip
    if section in TABLES:
        doc = dir_csv.CsvDoc(version.files.get(TABLES[section], ""))
        fields: list[Any] = [dir_forms.F(h, "str", h) for h in doc.header]
    else:
        ydoc = YamlDoc(version.files.get(SECTIONS[section].file, ""), SECTIONS[section])
        entity = ydoc.get(key) if key and key in ydoc.ids() else None
        fields = dir_forms.specs_for(section, entity)
    plain = {"str", "int", "bool", "choice", "list", "lines", "words", "yaml"}
    nested = any(f.kind not in plain for f in fields)
    return render(
        request, "directory/edit.html", status_code=status, nav="rules", section=section,
        version=version, key=key, fields=fields, values=values, errors=errors, general=general,
        is_table=section in TABLES, choices=choices_of(version.files) if nested else None,
        entity_labels=ENTITY_LABELS, **rule_form.template_values(),
    )  # fmt: skip


@router.get("/rules/row")
def rule_row(
    request: Request,
    part: str,
    token: str = "",
    viewer: SessionUser = Depends(require("rules.read")),
) -> Response:
    """One condition or action row: a new empty one, or one whose field select changed (its
    value inputs become the ones that field needs)."""
    if part not in rule_form.PARTS or not re.fullmatch(r"[0-9a-z]{0,12}", token):
        raise HTTPException(404, "нет такой строки")
    version = shown_version(request)
    params = _flat(request.query_params.multi_items())
    row = rule_form.row_from(params, part, token) if token else rule_form.Row(rule_form.new_token())
    if token and params.get(f"{part}-r{token}-was", "") != row.code:
        row = rule_form.Row(token, row.code)  # another field: its old value means nothing now
    return render(
        request, "directory/rule_row.html", part=part, row=row, choices=choices_of(version.files),
        entity_labels=ENTITY_LABELS, errors={}, **rule_form.template_values(),
    )  # fmt: skip


def _flat(items: list[tuple[str, Any]]) -> dict[str, str]:
    """Form fields by name; a name sent more than once (a multiple select, checkboxes) keeps
    every value, one per line."""
    out: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, str):
            out[name] = f"{out[name]}\n{value}" if name in out else value
    return out


@router.get("/{section}/edit")
def edit_form(
    request: Request,
    section: str,
    key: str = "",
    viewer: SessionUser = Depends(require("rules.read")),
) -> Response:
    _section(section)
    version = shown_version(request)
    text = version.files.get(_file_of(section), "")
    entity: dict[str, Any] | None = None
    if key and section in TABLES:
        record = dir_csv.CsvDoc(text).find(key)
        entity = record.cells if record else None
    elif key:
        ydoc = YamlDoc(text, SECTIONS[section])
        entity = ydoc.get(key) if key in ydoc.ids() else None
    if key and entity is None:
        raise HTTPException(404, f"«{key}» не найден")
    values = _form_values(section, entity)
    if section in TABLES:
        values = {h: (entity or {}).get(h, "") for h in dir_csv.CsvDoc(text).header}
    line_problems: list[str] = []
    if key:
        line = _line_of(section, text, key)
        line_problems = [
            f"{p.file}:{p.line}: {p.message}"
            for p in drafts.problems_of(version.files)
            if p.file == _file_of(section) and line and line[0] <= p.line < line[1]
        ]
    return _editor(request, section, version, key, values, {}, line_problems)


def _line_of(section: str, text: str, key: str) -> tuple[int, int] | None:
    """1-based [first, end) lines of an entity, for its checker messages."""
    if section in TABLES:
        record = dir_csv.CsvDoc(text).find(key)
        return (record.start, record.start + max(1, record.raw.count("\n"))) if record else None
    ydoc = YamlDoc(text, SECTIONS[section])
    if key not in ydoc.ids():
        return None
    first, end = ydoc.span(key)
    return first + 1, end + 1


@router.post("/{section}/save")
async def save(
    request: Request,
    section: str,
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    _section(section)
    form = _flat((await request.form()).multi_items())
    original = form.pop("_key", "")
    new_key = form.pop("_new_key", "").strip()
    form.pop("csrf_token", None)
    return await run_in_threadpool(_save_sync, request, section, viewer, original, new_key, form)


def _save_sync(
    request: Request,
    section: str,
    viewer: SessionUser,
    original: str,
    new_key: str,
    form: dict[str, str],
) -> Response:
    with session_scope(request.app.state.engine) as s:
        draft = drafts.ensure_draft(s, actor=viewer.login)
        file = _file_of(section)
        text = draft.files.get(file, "")
        key = original or new_key
        errors: dict[str, list[str]] = {}
        if section in TABLES:
            new_text, key, errors = _csv_change(text, original, form)
            before_text = _row_text(text, original)
        else:
            new_text, errors = _yaml_change(section, text, original, new_key, form)
            before_text = _entity_text(section, text, original)
        if errors:
            s.rollback()
            values = _submitted(section, draft, original, {**form, "_new_key": new_key})
            return _editor(request, section, draft, original, values, errors, [], 422)
        files = {**draft.files, file: new_text}
        result = drafts.check_change(draft.files, files)
        if not result.ok:
            values = _submitted(section, draft, original, {**form, "_new_key": new_key})
            field_errors, general = _place(
                section, new_text, key, file, result.new_errors, form, set(values)
            )
            s.rollback()
            return _editor(request, section, draft, original, values, field_errors, general, 422)
        drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login,
            what="create" if not original else "update", check=result,
            details={"file": file, "entity": key, "before": before_text,
                     "after": _row_text(new_text, key) if section in TABLES
                     else _entity_text(section, new_text, key)},
        )  # fmt: skip
    return RedirectResponse(f"/ui/rules/draft/{section}?notice=saved:{quote(key)}", status_code=303)


def _row_text(text: str, key: str) -> str | None:
    record = dir_csv.CsvDoc(text).find(key) if key else None
    return record.raw.rstrip("\r\n") if record else None


def _entity_text(section: str, text: str, key: str) -> str | None:
    ydoc = YamlDoc(text, SECTIONS[section])
    if not key or key not in ydoc.ids():
        return None
    first, end = ydoc.span(key)
    return "".join(ydoc.lines[first:end])


def _csv_change(
    text: str, original: str, form: dict[str, str]
) -> tuple[str, str, dict[str, list[str]]]:
    doc = dir_csv.CsvDoc(text)
    cells = {h: form.get(h, "").strip() for h in doc.header}
    key = cells.get("id", "")
    errors: dict[str, list[str]] = {}
    if not key:
        errors["id"] = [N_("обязательное поле")]
    elif key != original and doc.find(key) is not None:
        errors["id"] = [N_("такой id уже есть")]
    if errors:
        return text, key, errors
    if original:
        if doc.find(original) is None:
            raise HTTPException(404, f"«{original}» не найден")
        return doc.replaced(original, cells), key, {}
    return doc.appended(cells), key, {}


def _yaml_change(
    section: str, text: str, original: str, new_key: str, form: dict[str, str]
) -> tuple[str, dict[str, list[str]]]:
    spec = SECTIONS[section]
    ydoc = YamlDoc(text, spec)
    if original:
        if original not in ydoc.ids():
            raise HTTPException(404, f"«{original}» не найден")
        entity = ydoc.get(original)
    else:
        problem = dir_forms.check_key(new_key, ydoc.ids(), True)
        if problem:
            return text, {"_new_key": [problem]}
        entity = CommentedMap()
        if spec.is_list:
            entity["id"] = new_key
    specs = dir_forms.specs_for(section, entity)
    entity, errors = dir_forms.apply(entity, specs, form)
    if errors:
        return text, errors
    if original:
        return ydoc.replaced(original, entity), {}
    return ydoc.appended(new_key, entity), {}


def _place(
    section: str, text: str, key: str, file: str, problems: list[Any],
    form: dict[str, str] | None = None, shown: set[str] | None = None,
) -> tuple[dict[str, list[str]], list[str]]:  # fmt: skip
    """Each new error next to its field when it is about the edited entity, else on top. In a
    rule, next to the condition or action row it is about; in a target, next to its input."""
    fields: dict[str, list[str]] = {}
    general: list[str] = []
    span = _line_of(section, text, key)
    key_lines: dict[str, int] = {}
    header: list[str] = []
    if section in TABLES:
        header = dir_csv.CsvDoc(text).header
    else:
        ydoc = YamlDoc(text, SECTIONS[section])
        key_lines = ydoc.key_lines(key) if key in ydoc.ids() else {}
    for p in problems:
        inside = p.file == file and span is not None and span[0] <= p.line < span[1]
        name = None
        if inside and section in TABLES:
            name = dir_csv.column_of(p.message, header)
        elif inside:
            name = _refine(section, dir_forms.field_of_line(key_lines, p.line), p.message, form)
        if name and shown is not None and {name, name.partition("-")[0]}.isdisjoint(shown):
            name = None  # a line of no input (the id): the message goes on top
        if name:
            fields.setdefault(name, []).append(p.message)
        else:
            general.append(f"{p.file}:{p.line}: {p.message}")
    return fields, general


def _refine(
    section: str, name: str | None, message: str, form: dict[str, str] | None
) -> str | None:
    """A rule's block or a target field narrowed to the row or input the message is about."""
    if section == "rules" and form is not None:
        if name not in rule_form.PARTS and "никогда не сработает" in message:
            name = "when"  # about the conditions, reported at the rule's first line
        if name in rule_form.PARTS:
            blocks = {p: rule_form.block_from_form(p, form) for p in rule_form.PARTS}
            return rule_form.locate(message, blocks, name) or name
    if name == "target" and form is not None and "target-stage" in form:
        which = rule_form.target_input(message)
        return f"target-{which}" if which else name
    return name
