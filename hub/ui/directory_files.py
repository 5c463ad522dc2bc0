"""Directory editor, the rest: delete and reorder entities, spreadsheet import and export for
stores and employees, and any file of the draft as plain text (settings, bitrix24.yaml)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.db import session_scope
from hub.storage.users import SessionUser
from hub.ui import dir_csv, drafts
from hub.ui.dir_yaml import SECTIONS, YamlDoc
from hub.ui.directory import TABLES, _entity_text, _row_text, shown_version
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/rules/draft")
MAX_UPLOAD = 20 * 1024 * 1024


@router.get("/files")
def file_view(
    request: Request, name: str = "", viewer: SessionUser = Depends(require("rules.read"))
) -> Response:
    version = shown_version(request)
    if name and name not in version.files:
        raise HTTPException(404, f"нет файла {name}")
    problems = [p for p in drafts.problems_of(version.files) if p.file == name]
    return render(
        request, "directory/file.html", nav="rules", version=version, name=name,
        text=version.files.get(name, ""), problems=problems, new_problems=[],
        notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.post("/files")
def file_save(
    request: Request,
    name: str = Form(...),
    text: str = Form(...),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    text = text.replace("\r\n", "\n")  # browsers send CRLF; keep the file's own endings
    with session_scope(request.app.state.engine) as s:
        draft = drafts.ensure_draft(s, actor=viewer.login)
        if name not in draft.files:
            raise HTTPException(404, f"нет файла {name}")
        if "\r\n" in draft.files[name]:
            text = text.replace("\n", "\r\n")
        files = {**draft.files, name: text}
        before = draft.files[name]
        result = drafts.check_change(draft.files, files)
        if not result.ok:
            s.rollback()
            return render(
                request, "directory/file.html", status_code=422, nav="rules", version=draft,
                name=name, text=text, problems=[p for p in result.problems if p.file == name],
                new_problems=result.new_errors, notice=None,
            )  # fmt: skip
        diff = drafts.unified({name: before}, {name: text}, "до", "после").get(name, [])
        drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login, what="file", check=result,
            details={"file": name, "diff": "\n".join(diff[:400])},
        )  # fmt: skip
    return RedirectResponse(f"/ui/rules/draft/files?name={quote(name)}&notice=saved", 303)


@router.post("/{section}/delete")
def delete(
    request: Request,
    section: str,
    key: str = Form(...),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    if section not in TABLES and section not in SECTIONS:
        raise HTTPException(404, section)
    with session_scope(request.app.state.engine) as s:
        draft = drafts.ensure_draft(s, actor=viewer.login)
        file = TABLES.get(section) or SECTIONS[section].file
        text = draft.files.get(file, "")
        if section in TABLES:
            before, new_text = _row_text(text, key), dir_csv.CsvDoc(text).removed(key)
        else:
            ydoc = YamlDoc(text, SECTIONS[section])
            if key not in ydoc.ids():
                raise HTTPException(404, key)
            before, new_text = _entity_text(section, text, key), ydoc.removed(key)
        files = {**draft.files, file: new_text}
        result = drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login, what="delete",
            details={"file": file, "entity": key, "before": before, "after": None},
        )  # fmt: skip
        if not result.ok:
            s.rollback()
            return render(
                request, "directory/blocked.html", status_code=422, nav="rules",
                section=section, key=key, problems=result.new_errors,
            )  # fmt: skip
    return RedirectResponse(f"/ui/rules/draft/{section}?notice=deleted:{quote(key)}", 303)


@router.post("/rules/move")
def move(
    request: Request,
    key: str = Form(...),
    delta: int = Form(...),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    """Rules run top to bottom: moving one changes which applies first."""
    with session_scope(request.app.state.engine) as s:
        draft = drafts.ensure_draft(s, actor=viewer.login)
        ydoc = YamlDoc(draft.files.get("rules.yaml", ""), SECTIONS["rules"])
        if key not in ydoc.ids():
            raise HTTPException(404, key)
        files = {**draft.files, "rules.yaml": ydoc.moved(key, -1 if delta < 0 else 1)}
        result = drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login, what="move",
            details={"file": "rules.yaml", "entity": key, "delta": delta},
        )  # fmt: skip
        if not result.ok:
            s.rollback()
            return render(
                request, "directory/blocked.html", status_code=422, nav="rules",
                section="rules", key=key, problems=result.new_errors,
            )  # fmt: skip
    return RedirectResponse("/ui/rules/draft/rules?notice=moved:" + quote(key), 303)


@router.get("/{table}/export.{fmt}")
def export(
    request: Request, table: str, fmt: str, viewer: SessionUser = Depends(require("rules.read"))
) -> Response:
    if table not in TABLES or fmt not in ("csv", "xlsx"):
        raise HTTPException(404, table)
    version = shown_version(request)
    text = version.files.get(TABLES[table], "")
    name = f"{table}-v{version.id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":  # exactly the stored bytes, BOM and all
        return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers)
    data = dir_csv.to_xlsx(dir_csv.CsvDoc(text), table)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, media_type=xlsx, headers=headers)


@router.post("/{table}/import")
async def import_table(
    request: Request,
    table: str,
    upload: UploadFile = File(...),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    if table not in TABLES:
        raise HTTPException(404, table)
    data = await upload.read(MAX_UPLOAD + 1)
    name = upload.filename or "upload"
    return await run_in_threadpool(_import_sync, request, table, name, data, viewer)


def _import_sync(
    request: Request, table: str, name: str, data: bytes, viewer: SessionUser
) -> Response:
    file = TABLES[table]
    try:
        if len(data) > MAX_UPLOAD:
            raise dir_csv.UploadError(f"{name}: больше {MAX_UPLOAD // 2**20} МБ")
        text = dir_csv.upload_to_text(name, data)
    except dir_csv.UploadError as exc:
        return render(
            request, "directory/import.html", status_code=422, nav="rules", table=table,
            name=name, error=str(exc), doc=None, by_line={}, general=[],
        )  # fmt: skip
    with session_scope(request.app.state.engine) as s:
        draft = drafts.ensure_draft(s, actor=viewer.login)
        files = {**draft.files, file: text}
        result = drafts.check_change(draft.files, files)
        if not result.ok:
            s.rollback()
            own = [p for p in result.new_errors if p.file == file]
            return render(
                request, "directory/import.html", status_code=422, nav="rules", table=table,
                name=name, error=None, doc=dir_csv.CsvDoc(text),
                by_line=dir_csv.problems_by_line(own, file),
                general=[p for p in result.new_errors if p.file != file or p.line <= 1],
            )  # fmt: skip
        diff = drafts.unified({file: draft.files.get(file, "")}, {file: text}, "до", "после")
        drafts.save_files(
            s, draft=draft, files=files, actor=viewer.login, what="import", check=result,
            details={"file": file, "upload": name, "diff": "\n".join(diff.get(file, [])[:400])},
        )  # fmt: skip
    return RedirectResponse(f"/ui/rules/draft/{table}?notice=imported:{quote(name)}", 303)
