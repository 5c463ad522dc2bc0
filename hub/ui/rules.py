"""The rule directory's versions: list, diff any two, restore, publish the draft with a comment,
test the draft against real appeals, try a typed text."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from hub.db import session_scope
from hub.http.params import IdPath, IdQuery
from hub.routing.compile import RulesInvalid
from hub.routing.types import AppealInput, AuthorInput
from hub.storage import rulesets
from hub.storage.ui_queries import add_audit
from hub.storage.users import SessionUser
from hub.ui import draft_runs, draft_test, drafts
from hub.ui.i18n import N_
from hub.ui.security import require
from hub.ui.templating import render

router = APIRouter(prefix="/ui/rules")
TEST_SIZES = (1000, 5000, 10000, 20000)
CHANNELS = ("vk", "telegram", "ok", "twogis", "yandex", "tilda", "form", "email", "mango", "uis")
KINDS = ("message", "comment", "review", "call", "form", "email")


def _engine(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.engine


@router.get("")
def versions(request: Request, viewer: SessionUser = Depends(require("rules.read"))) -> Response:
    with session_scope(_engine(request), read_only=True) as s:
        items = rulesets.list_versions(s)
        draft = drafts.working_draft(s)
        published = rulesets.published_id(s)
        problems = drafts.problems_of(draft.files) if draft else []
    return render(
        request,
        "pages/rules.html",
        nav="rules",
        versions=items,
        draft=draft,
        published=published,
        problems=problems,
        test_sizes=TEST_SIZES,
        channels=CHANNELS,
        kinds=KINDS,
        notice=request.query_params.get("notice"),
    )


@router.post("/draft")
def create_draft(
    request: Request, viewer: SessionUser = Depends(require("rules.write"))
) -> Response:
    with session_scope(_engine(request)) as s:
        try:
            draft = drafts.ensure_draft(s, actor=viewer.login)
        except drafts.DraftError as exc:
            raise HTTPException(409, str(exc)) from None
        draft_id = draft.id
    return RedirectResponse(f"/ui/rules/draft/employees?notice=draft:{draft_id}", status_code=303)


@router.get("/diff")
def diff(
    request: Request, a: IdQuery, b: IdQuery, viewer: SessionUser = Depends(require("rules.read"))
) -> Response:
    with session_scope(_engine(request), read_only=True) as s:
        old = rulesets.get_version(session=s, version_id=a)
        new = rulesets.get_version(session=s, version_id=b)
        if old is None or new is None:
            raise HTTPException(404, "нет такой версии")
        changes = drafts.unified(old.files, new.files, f"v{a}", f"v{b}")
        versions_list = rulesets.list_versions(s)
    return render(
        request, "pages/rules_diff.html", nav="rules", a=a, b=b, changes=changes,
        versions=versions_list,
    )  # fmt: skip


@router.get("/versions/{version_id}")
def version_files(
    request: Request,
    version_id: IdPath,
    file: str | None = None,
    viewer: SessionUser = Depends(require("rules.read")),
) -> Response:
    with session_scope(_engine(request), read_only=True) as s:
        version = rulesets.get_version(session=s, version_id=version_id)
        if version is None:
            raise HTTPException(404, "нет такой версии")
    shown = file if file in version.files else None
    return render(
        request, "pages/rules_version.html", nav="rules", version=version, file=shown,
        text=version.files.get(shown, "") if shown else "",
    )  # fmt: skip


@router.post("/versions/{version_id}/restore")
def restore(
    request: Request,
    version_id: IdPath,
    publish_now: bool = Form(False),
    comment: str = Form(""),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    """One click brings an older version back: a new draft with its files, published at once
    unless the admin unticks it."""
    with session_scope(_engine(request)) as s:
        try:
            draft = rulesets.restore(session=s, version_id=version_id, created_by=viewer.login)
            if publish_now:
                draft.note = comment.strip() or f"восстановлена версия {version_id}"
                rulesets.publish(session=s, published_by=viewer.login, version_id=draft.id)
        except (rulesets.RuleSetError, RulesInvalid) as exc:
            raise HTTPException(409, str(exc)) from None
        new_id = draft.id
    notice = f"published:{new_id}" if publish_now else f"draft:{new_id}"
    return RedirectResponse(f"/ui/rules?notice={notice}", status_code=303)


@router.post("/draft/publish")
def publish(
    request: Request,
    comment: str = Form(...),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    comment = comment.strip()
    with session_scope(_engine(request)) as s:
        draft = drafts.working_draft(s)
        if draft is None:
            raise HTTPException(409, N_("черновика нет"))
        if not comment:
            raise HTTPException(422, N_("нужен комментарий: что изменилось"))
        draft.note = comment
        try:
            rulesets.publish(session=s, published_by=viewer.login, version_id=draft.id)
        except (rulesets.RuleSetError, RulesInvalid) as exc:
            raise HTTPException(409, str(exc)) from None
        add_audit(
            s, actor=viewer.login, action="rules.publish.comment", object_type="ruleset_version",
            object_id=str(draft.id), details={"comment": comment},
        )  # fmt: skip
        new_id = draft.id
    return RedirectResponse(f"/ui/rules?notice=published:{new_id}", status_code=303)


@router.post("/draft/test")
def test_draft(
    request: Request,
    size: int = Form(5000),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    """Start re-routing the latest ``size`` appeals by both versions in the background and
    answer at once with the progress, which polls :func:`draft_test_progress`."""
    size = size if size in TEST_SIZES else 5000
    with session_scope(_engine(request), read_only=True) as s:
        if drafts.working_draft(s) is None or rulesets.published_id(s) is None:
            raise HTTPException(409, "нужны черновик и действующая версия")
    return _progress(request, viewer, size, token=None)


@router.post("/draft/test/{token}")
def draft_test_progress(
    request: Request,
    token: str,
    size: int = Form(5000),
    viewer: SessionUser = Depends(require("rules.write")),
) -> Response:
    """How far the test has got, or its result once done. A token this process does not know
    (another web process started it) starts the same test here (hub/ui/draft_runs.py)."""
    if not draft_runs.valid_token(token):
        raise HTTPException(404, "нет такой проверки")
    run = draft_runs.get(token)
    if run is None:
        return _progress(request, viewer, size if size in TEST_SIZES else 5000, token=token)
    if run.owner != viewer.login:
        raise HTTPException(404, "нет такой проверки")
    if run.state == "done":
        return render(request, "partials/draft_test.html", result=run.result, run=run)
    return render(request, "partials/draft_test_progress.html", run=run)


def _progress(request: Request, viewer: SessionUser, size: int, token: str | None) -> Response:
    try:
        run = draft_runs.start(_engine(request), owner=viewer.login, size=size, token=token)
    except draft_runs.Busy as exc:
        raise HTTPException(429, str(exc)) from None
    if run.owner != viewer.login:
        raise HTTPException(404, "нет такой проверки")
    return render(request, "partials/draft_test_progress.html", run=run)


@router.post("/try")
def try_text(
    request: Request,
    text: str = Form(""),
    channel: str = Form("vk"),
    kind: str = Form("message"),
    source: str = Form(""),
    phone: str = Form(""),
    which: str = Form("published"),
    viewer: SessionUser = Depends(require("rules.read")),
) -> Response:
    with session_scope(_engine(request), read_only=True) as s:
        version = drafts.working_draft(s) if which == "draft" else None
        version = version or rulesets.get_published(s)
        if version is None:
            raise HTTPException(409, "нет опубликованной версии")
        ruleset = drafts.compiled_version(s, version)
        counts = draft_test.open_counts(s, ruleset.model)
    appeal = AppealInput(
        channel=channel, source=source.strip() or "test", kind=kind, text=text,
        author=AuthorInput(name="Проверка", phone=phone.strip() or None),
    )  # fmt: skip
    decision = draft_test.route_text(ruleset, appeal, counts)
    return render(request, "partials/try_result.html", decision=decision, version=version)
