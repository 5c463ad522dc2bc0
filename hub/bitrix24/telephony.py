"""A call appeal in Bitrix24 telephony: ``register`` → ``finish`` → bind to the deal →
``attachRecord``, and a "call back" task for a missed call (job ``telephony.call``).

Runs after ``deliver.appeal`` created the contact and the deal, on the application's tokens
(hub/bitrix24/app_setup.py): ``telephony.externalCall.register``/``finish`` refuse webhooks
(``WRONG_AUTH_TYPE``). Docs facts (bitrix24/b24restdocs, api-reference/telephony/*):
- register binds a call to a CONTACT, COMPANY or LEAD only, so the call goes on the routed deal's
  contact and ``finish``'s activity is then bound to the deal (``crm.activity.binding.add``);
- ``finish`` is what creates the CRM activity; ``STATUS_CODE`` 200 answered, 304 missed;
- ``attachRecord`` must follow ``finish``, takes only .mp3/.wav, replaces an earlier record, and
  refuses a ``RECORD_URL`` on a non-public address.
Every step is recorded in ``telephony_calls.steps`` as ``intent`` before its request and ``done``
after it (invariant 2). An ``intent`` found later means a worker died in between: register and
finish are then looked up in ``voximplant.statistic.get`` by ``EXTERNAL_CALL_ID``/``CALL_ID``
(and a repeated register within 30 min returns the same ``CALL_ID`` anyway); the task is looked
up by the marker in its title; binding and attaching are idempotent by nature.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from hub import files
from hub.bitrix24 import app_setup
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.errors import Bitrix24Error, MethodError
from hub.bitrix24.factory import NotConfigured
from hub.bitrix24.plan import marker
from hub.db import session_scope
from hub.jobs import JobContext, JobHandler, crash_at
from hub.models import Appeal, AppealState, Job, JobState, RecordingState, TelephonyCall
from hub.settings import Settings, get_settings
from hub.storage import sources as sources_store
from hub.storage import telephony_calls as calls_store
from hub.telephony import DELIVER_JOB, line_settings
from hub.telephony_recordings import delivery_mode, signed_recording_url
from hub.timeutil import as_utc, utcnow

KIND = DELIVER_JOB
ENTITY_TYPE_IDS = {"deal": 2, "lead": 1}


class StepError(Exception):
    """A step cannot succeed as configured (no responsible with a Bitrix24 id...)."""


class CallSteps:
    """The telephony steps of one call, each recorded at once (short transactions: on SQLite
    the write lock is never held across a request to the portal)."""

    def __init__(
        self, client: Bitrix24Client, engine: Engine, settings: Settings, appeal: Appeal,
        call: TelephonyCall, config: dict[str, Any],
    ) -> None:  # fmt: skip
        self.client, self.engine, self.settings = client, engine, settings
        self.appeal, self.call, self.config = appeal, call, config
        self.done: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------------
    def state(self, step: str) -> Any:
        return (self.call.steps or {}).get(step)

    def mark(self, step: str, state: Any, **values: Any) -> None:
        with session_scope(self.engine) as s:
            row = calls_store.for_appeal(s, self.call.appeal_id, lock=True)
            assert row is not None
            calls_store.set_step(s, row, step, state)
            calls_store.save(s, row, **values)
        self.call.steps = {**(self.call.steps or {}), step: state}
        for key, value in values.items():
            setattr(self.call, key, value)

    def crash(self, point: str) -> None:
        crash_at(f"{KIND}:{point}", self.settings)  # crash tests: the portal has it, we do not

    # -- the steps -----------------------------------------------------------------------------
    def run(self) -> None:
        self.register()
        self.finish()
        self.bind()
        self.record()
        self.task()

    @property
    def user_id(self) -> int:
        if not self.appeal.bitrix_user_id:
            raise StepError("the routed responsible has no Bitrix24 user id (employees.csv)")
        return int(self.appeal.bitrix_user_id)

    def register(self) -> None:
        if self.state("register") == "done":
            return
        ext = self.call.external_call_id or f"clienthub-{self.appeal.id}-{self.call.call_key}"[:255]
        if self.state("register") == "intent" and self._recover_by("EXTERNAL_CALL_ID", ext):
            return
        facts = self.appeal.fields or {}
        params: dict[str, Any] = {
            "USER_ID": self.user_id,
            "PHONE_NUMBER": self.appeal.author_phone or facts.get("caller") or "",
            "TYPE": 1 if facts.get("direction") == "out" else 2,
            "CRM_CREATE": 0,
            "SHOW": 0,
            "EXTERNAL_CALL_ID": ext,
        }
        if facts.get("started_at"):
            params["CALL_START_DATE"] = datetime.fromisoformat(facts["started_at"]).isoformat()
        if facts.get("line"):
            params["LINE_NUMBER"] = str(facts["line"])
        if self.appeal.crm_entity == "lead" and self.appeal.crm_entity_id:
            params.update(CRM_ENTITY_TYPE="LEAD", CRM_ENTITY_ID=self.appeal.crm_entity_id)
        elif self.appeal.crm_contact_id:
            params.update(CRM_ENTITY_TYPE="CONTACT", CRM_ENTITY_ID=self.appeal.crm_contact_id)
        self.mark("register", "intent", external_call_id=ext)
        result = self.client.call("telephony.externalCall.register", params, safe=True).result
        self.crash("after_register")
        self.mark("register", "done", b24_call_id=str(result["CALL_ID"]))
        self.done.append("register")

    def finish(self) -> None:
        if self.state("finish") == "done":
            return
        assert self.call.b24_call_id
        if self.state("finish") == "intent" and self._recover_by("CALL_ID", self.call.b24_call_id):
            return
        facts = self.appeal.fields or {}
        params: dict[str, Any] = {
            "CALL_ID": self.call.b24_call_id,
            "USER_ID": self.user_id,
            "DURATION": int(facts.get("duration") or 0),
            "STATUS_CODE": "200" if facts.get("answered") else "304",
        }
        if not facts.get("answered"):
            params["FAILED_REASON"] = "Пропущенный звонок"
        self.mark("finish", "intent")
        result = self.client.call("telephony.externalCall.finish", params).result
        self.crash("after_finish")
        activity = result.get("CRM_ACTIVITY_ID") if isinstance(result, dict) else None
        self.mark("finish", "done", b24_activity_id=int(activity) if activity else None)
        self.done.append("finish")

    def _recover_by(self, field: str, value: str) -> bool:
        """After a crash: did the portal finish this call already? (Statistics hold finished
        calls only.) True when it did, with the register and finish steps then marked done."""
        rows = self.client.call("voximplant.statistic.get", {"FILTER": {field: value}}).result
        for row in rows or []:
            activity = row.get("CRM_ACTIVITY_ID")
            self.mark("register", "done", b24_call_id=str(row["CALL_ID"]))
            self.mark("finish", "done", b24_activity_id=int(activity) if activity else None)
            return True
        return False

    def bind(self) -> None:
        """The call's activity sits on the contact; put it on the deal's timeline too."""
        entity, entity_id = self.appeal.crm_entity or "deal", self.appeal.crm_entity_id
        if self.state("bind") == "done" or entity == "lead" or not entity_id:
            return
        if not self.call.b24_activity_id:
            self.mark("bind", "done")  # the portal made no activity: nothing to bind
            return
        params = {
            "activityId": self.call.b24_activity_id,
            "entityTypeId": ENTITY_TYPE_IDS[entity],
            "entityId": entity_id,
        }
        try:
            self.client.call("crm.activity.binding.add", params, safe=True)
        except MethodError as exc:
            if exc.code.upper() != "ACTIVITY_IS_ALREADY_BOUND":
                raise
        self.mark("bind", "done")
        self.done.append("bind")

    def record(self) -> None:
        sha, name = self.call.recording_sha, self.call.recording_name or "recording.mp3"
        if self.call.recording_state != RecordingState.stored or not sha:
            return
        if (self.state("record") or {}).get("sha") == sha and self.state("record")["done"]:
            return
        # attachRecord replaces the call's record: repeating it after a crash is harmless.
        self.mark("record", {"sha": sha, "done": False})
        params: dict[str, Any] = {"CALL_ID": self.call.b24_call_id, "FILENAME": name}
        path = files.store_for(self.settings).path(sha)
        size = path.stat().st_size
        if delivery_mode(self.settings) == "url":
            params["RECORD_URL"] = signed_recording_url(self.settings, sha, name)
            self.client.call("telephony.externalCall.attachRecord", params, safe=True)
        elif size <= self.settings.recording_inline_max_bytes:
            params["FILE_CONTENT"] = base64.b64encode(path.read_bytes()).decode()
            self.client.call("telephony.externalCall.attachRecord", params, safe=True)
        else:
            answer = self.client.call("telephony.externalCall.attachRecord", params, safe=True)
            self._upload(answer.result, path, name)
        self.crash("after_attach")
        self.mark("record", {"sha": sha, "done": True})
        self.done.append("record")

    def _upload(self, answer: Any, path: Any, name: str) -> None:
        """``FILENAME`` without content answers ``{uploadUrl, fieldName}``: the file goes there as
        multipart, streamed from disk. The URL carries a token: it is never logged."""
        if not isinstance(answer, dict) or not answer.get("uploadUrl"):
            raise MethodError("telephony.externalCall.attachRecord", "", "no uploadUrl")
        self.client.limiter.acquire("upload")
        timeout = httpx.Timeout(self.settings.b24_timeout_seconds * 10, connect=10.0)
        with path.open("rb") as fh:
            form = {str(answer.get("fieldName") or "file"): (name, fh, "application/octet-stream")}
            try:
                resp = httpx.post(str(answer["uploadUrl"]), files=form, timeout=timeout)
            except httpx.HTTPError as exc:
                raise MethodError("upload", "", type(exc).__name__, None) from None
        body = (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if resp.status_code >= 400 or (isinstance(body, dict) and body.get("error")):
            raise MethodError(
                "upload", str(body.get("error") or ""), resp.text[:200], resp.status_code
            )

    def task(self) -> None:
        facts = self.appeal.fields or {}
        wanted = facts.get("missed") and line_settings(self.config, facts.get("line")).get(
            "callback_task"
        )
        if not wanted or self.state("task") == "done":
            return
        mark = f"({marker(self.appeal.id or 0)})"
        if self.state("task") == "intent":
            found = self.client.call(
                "tasks.task.list",
                {"filter": {"TITLE": f"%{mark}%"}, "select": ["ID", "TITLE"]},
            ).result
            tasks = found.get("tasks", []) if isinstance(found, dict) else []
            if tasks:
                self.mark("task", "done", b24_task_id=int(tasks[0]["id"]))
                return
        self.mark("task", "intent")
        result = self.client.call("tasks.task.add", {"fields": self._task_fields(mark)}).result
        self.mark("task", "done", b24_task_id=int(result["task"]["id"]))
        self.done.append("task")

    def _task_fields(self, mark: str) -> dict[str, Any]:
        facts = self.appeal.fields or {}
        ended = facts.get("ended_at") or facts.get("started_at")
        base = as_utc(datetime.fromisoformat(ended)) if ended else utcnow()
        deadline = base + timedelta(minutes=self.settings.callback_task_minutes)
        crm = [f"{'L' if self.appeal.crm_entity == 'lead' else 'D'}_{self.appeal.crm_entity_id}"]
        if self.appeal.crm_contact_id:
            crm.append(f"C_{self.appeal.crm_contact_id}")
        line = f" на линию {facts['line']}" if facts.get("line") else ""
        link = f"{self.settings.effective_public_url()}/appeals/{self.appeal.id}"
        return {
            "TITLE": f"Перезвонить: пропущенный звонок {self.appeal.author_phone or ''} {mark}",
            "DESCRIPTION": "\n".join(
                (f"Пропущенный звонок{line}.", self.appeal.text, f"[URL={link}]{link}[/URL]")
            ),
            "RESPONSIBLE_ID": self.user_id,
            "DEADLINE": deadline.isoformat(),
            "UF_CRM_TASK": crm,
        }


# -- the job -----------------------------------------------------------------------------------
_clients: dict[int, Bitrix24Client] = {}
_lock = threading.Lock()


def _default_client(engine: Engine) -> Bitrix24Client:
    with _lock:
        client = _clients.get(id(engine))
        if client is None:
            client = app_setup.app_client(get_settings(), engine)
            _clients[id(engine)] = client
        return client


def claim(engine: Engine, appeal_id: int, job: Job, worker: str) -> bool:
    """One job at a time per call (the delivery and a late recording's attach may both be due):
    the claim names the job; it lapses when that job's lease does."""
    with session_scope(engine) as s:
        row = calls_store.for_appeal(s, appeal_id, lock=True)
        if row is None:
            return False
        holder = (row.steps or {}).get("claim") or {}
        if holder and holder.get("job") != job.id:
            other = s.get(Job, int(holder["job"]))
            live = (
                other is not None
                and other.state == JobState.running
                and other.locked_until is not None
                and as_utc(other.locked_until) > utcnow()
            )
            if live:
                return False
        calls_store.set_step(s, row, "claim", {"job": job.id, "worker": worker})
    return True


def make_handler(
    client_for: Callable[[Engine], Bitrix24Client] = _default_client,
) -> JobHandler:
    def run(ctx: JobContext) -> None:
        settings = get_settings()
        for job in ctx.jobs:
            _run_one(ctx, job, settings, client_for)

    return JobHandler(KIND, run)


def _run_one(
    ctx: JobContext, job: Job, settings: Settings, client_for: Callable[[Engine], Bitrix24Client]
) -> None:
    appeal_id = int(job.payload["appeal_id"])
    with ctx.read() as s:
        appeal = s.get(Appeal, appeal_id)
        call = calls_store.for_appeal(s, appeal_id)
        config = next(
            (dict(r.config) for r in sources_store.list_all(s)
             if appeal and (r.channel, r.source) == (appeal.channel, appeal.source)),
            {},
        )  # fmt: skip
    if appeal is None or call is None or appeal.state == AppealState.filtered:
        return  # nothing to put in front of staff
    if not appeal.crm_entity_id:
        ctx.fail(job, "waiting for deliver.appeal to create the deal", retry=True)
        return
    try:
        client = client_for(ctx.engine)
    except NotConfigured as exc:
        retry = app_setup.app_enabled(settings)  # enabled: the install is still on its way
        ctx.fail(job, f"telephony needs the Bitrix24 application: {exc}", retry=retry)
        return
    if not claim(ctx.engine, appeal_id, job, ctx.worker_id):
        ctx.fail(job, "another job is working on this call", retry=True)
        return
    steps = CallSteps(client, ctx.engine, settings, appeal, call, config)
    error: str | None = None
    try:
        steps.run()
    except StepError as exc:
        error = str(exc)
        ctx.fail(job, error, retry=False)
    except Bitrix24Error as exc:
        error = str(exc)
        ctx.fail(job, error, retry=exc.transient)
    session = ctx.session
    row = calls_store.for_appeal(session, appeal_id, lock=True)
    assert row is not None
    steps_now = {k: v for k, v in (row.steps or {}).items() if k != "claim"}
    calls_store.save(session, row, steps=steps_now, last_error=error)
    if steps.done:
        live = session.get(Appeal, appeal_id)
        assert live is not None
        live.trace = [*live.trace, _trace(steps)]
        session.add(live)
    ctx.log.info("telephony steps", extra={"appeal_id": appeal_id, "done": steps.done})


def _trace(steps: CallSteps) -> dict[str, Any]:
    names = {
        "register": "звонок зарегистрирован",
        "finish": "завершён (дело в CRM)",
        "bind": "привязан к сделке",
        "record": "запись прикреплена",
        "task": "поставлена задача перезвонить",
    }
    said = ", ".join(names[s] for s in steps.done)
    return {
        "step": "telephony",
        "rule": None,
        "message": f"Битрикс24, телефония: {said}.",
        "data": {"call_id": steps.call.b24_call_id, "steps": steps.done},
    }


HANDLERS = [make_handler()]
