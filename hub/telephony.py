"""One appeal per call: merge the PBX's events of a call, route the call once it has ended, and
queue what follows (the recording download, the Bitrix24 telephony steps).

A call arrives as several raw events (Mango: legs, DTMF, summary, recording; UIS: incoming,
finished, recorded; CTI: newCall, answer, hangup, recording), out of order and sometimes twice.
The pipeline's parse step calls :func:`merge_event` for every parsed call event (the small hook
in hub/pipeline.py). The facts of each event are kept per raw event on the call row and folded
again on every merge, so the result is the same whatever the order; a replayed event overwrites
its own entry. Routing waits for the end of the call (its line, menu choice and outcome are known
then), or for ``call_settle_seconds`` when the PBX never says the call ended.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from connectors import telephony_common
from connectors.base import ParsedAppeal, RawEventView
from connectors.telephony_common import describe, phone, short_hash
from hub import queue
from hub.jobs import JobContext, JobHandler
from hub.models import Appeal, AppealState, DeliveryState, RecordingState, TelephonyCall
from hub.settings import get_settings
from hub.storage import telephony_calls as calls_store
from hub.timeutil import utcnow

KIND = telephony_common.KIND  # the appeal kind of a call
SETTLE_JOB = "call.settle"
FETCH_JOB = "recording.fetch"
DELIVER_JOB = "telephony.call"
SPAM_TAG = "спам"
_MAX = ("duration", "wait_seconds", "total_seconds", "recording_seconds")
_EARLIEST = ("started_at", "answered_at")
_META = ("event", "at", "seq", "call_id")

Route = Callable[[Session, Appeal], None]


def merge_facts(events: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Fold the facts of every event of a call, oldest first: flags once true stay true, times
    keep their earliest (start) or latest (end), counters their maximum, and everything else
    the newest value. The result does not depend on the order the events arrived in."""

    def order(item: tuple[str, Mapping[str, Any]]) -> tuple[str, int, int]:
        key, f = item
        return (str(f.get("at") or ""), int(f.get("seq") or 0), int(key) if key.isdigit() else 0)

    out: dict[str, Any] = {}
    for _key, f in sorted(events.items(), key=order):
        for name, value in f.items():
            if name in _META or value is None:
                continue
            if name in ("answered", "ended"):
                out[name] = bool(out.get(name)) or bool(value)
            elif name in _MAX:
                out[name] = max(int(out.get(name) or 0), int(value))
            elif name in _EARLIEST:
                out[name] = min(out[name], value) if out.get(name) else value
            elif name == "ended_at":
                out[name] = max(out[name], value) if out.get(name) else value
            else:
                out[name] = value
    if out.get("answered") and not out.get("duration"):
        start, end = out.get("answered_at"), out.get("ended_at")
        if start and end:
            seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
            out["duration"] = max(0, int(seconds))
    out["answered"] = bool(out.get("answered"))
    out["ended"] = bool(out.get("ended"))
    out["missed"] = out["ended"] and not out["answered"]
    return out


def line_settings(config: Mapping[str, Any], line: str | None) -> dict[str, Any]:
    """The source's settings for one dialled line (``lines`` keyed by the number in any
    spelling), over the source-wide defaults."""
    lines = config.get("lines") or {}
    wanted = phone(line) or line
    for number, values in lines.items():
        if (phone(number) or number) == wanted and isinstance(values, Mapping):
            return {"callback_task": config.get("callback_task", False), **values}
    return {"callback_task": config.get("callback_task", False)}


def merge_event(
    session: Session,
    *,
    raw: RawEventView,
    parsed: ParsedAppeal,
    inserted: Appeal | None,
    route: Route,
) -> Appeal | None:
    """Merge one parsed call event into its appeal (``inserted`` when this event created it).
    Returns the appeal when it was created or routed now, else None."""
    assert parsed.external_id is not None, "call events carry the PBX's call id"
    appeal = inserted or calls_store.locked_appeal(
        session, channel=raw.channel, source=raw.source, external_id=parsed.external_id
    )
    call = calls_store.lock_for_appeal(session, appeal)
    call.events = {**(call.events or {}), str(raw.id): dict(parsed.fields)}
    merged = merge_facts(call.events)
    settings = line_settings(raw.source_config, merged.get("line"))
    if settings.get("name"):
        merged["line_name"] = str(settings["name"])
    call.ended = merged["ended"]
    _apply(appeal, merged)
    session.add(appeal)
    session.flush()
    _take_recording(session, appeal, call, merged.get("recording"))
    routed_now = False
    if appeal.state == AppealState.new:
        if call.ended:
            route_call(session, appeal, route)
            routed_now = True
        else:
            delay = float(raw.source_config.get("settle_seconds") or settle_seconds())
            assert appeal.id is not None
            queue.enqueue(
                session,
                SETTLE_JOB,
                f"call:{appeal.id}",
                {"appeal_id": appeal.id},
                run_at=utcnow() + timedelta(seconds=delay),
                appeal_id=appeal.id,
            )
    calls_store.save(session, call)
    return appeal if inserted is not None or routed_now else None


def settle_seconds() -> float:
    return float(get_settings().call_settle_seconds)


def _apply(appeal: Appeal, merged: dict[str, Any]) -> None:
    """The merged facts become the appeal's fields, author phone, text and time."""
    appeal.fields = {k: v for k, v in merged.items() if k != "recording"} | (
        {"recording": merged["recording"]} if merged.get("recording") else {}
    )
    if merged.get("caller"):
        appeal.author_phone = merged["caller"]
    if merged.get("contact_name") and not appeal.author_name:
        appeal.author_name = str(merged["contact_name"])[:255]
    appeal.text = describe(merged)
    started = merged.get("started_at")
    if isinstance(started, str):
        appeal.received_at = datetime.fromisoformat(started)


def route_call(session: Session, appeal: Appeal, route: Route) -> None:
    """Route with the pipeline's function, then mark spam and queue the telephony steps."""
    route(session, appeal)
    if appeal.state == AppealState.filtered:
        from hub.blacklist import blacklisting_filter

        if blacklisting_filter(session, appeal.author_phone, channel=appeal.channel):
            appeal.tags = [*(appeal.tags or []), SPAM_TAG]
            session.add(appeal)
        return
    if appeal.delivery_state == DeliveryState.pending:
        enqueue_delivery(session, appeal)


def enqueue_delivery(session: Session, appeal: Appeal, suffix: str = "") -> None:
    assert appeal.id is not None
    queue.enqueue(
        session,
        DELIVER_JOB,
        f"call:{appeal.id}{suffix}",
        {"appeal_id": appeal.id},
        appeal_id=appeal.id,
    )


def _take_recording(
    session: Session, appeal: Appeal, call: TelephonyCall, ref: dict[str, Any] | None
) -> None:
    """A new recording reference: a stored upload is ready at once, anything else is fetched by
    the ``recording.fetch`` job. Spam calls keep the reference but nothing is downloaded."""
    if not ref or ref == call.recording_ref:
        return
    call.recording_ref = dict(ref)
    assert appeal.id is not None
    if ref.get("kind") == "stored":
        from hub.telephony_recordings import mark_stored

        mark_stored(
            session,
            appeal,
            call,
            sha=str(ref["file_id"]),
            name=str(ref.get("name") or "recording"),
            size=int(ref.get("size") or 0),
        )
        return
    if appeal.state == AppealState.filtered:
        return
    call.recording_state = RecordingState.pending
    digest = short_hash(json.dumps(ref, sort_keys=True))
    queue.enqueue(
        session,
        FETCH_JOB,
        f"call:{appeal.id}:{digest}",
        {"appeal_id": appeal.id, "ref": ref},
        appeal_id=appeal.id,
    )


def run_settle(ctx: JobContext) -> None:
    """The PBX never said the call ended: route it with what is known, say so in the trace."""
    from hub.pipeline import route_appeal

    session = ctx.session
    for job in ctx.jobs:
        appeal = session.get(Appeal, int(job.payload["appeal_id"]), with_for_update=True)
        if appeal is None or appeal.state != AppealState.new:
            continue
        route_call(session, appeal, route_appeal)
        appeal.trace = [
            *appeal.trace,
            {
                "step": "call",
                "rule": None,
                "message": "АТС не сообщила о завершении звонка: маршрутизирован по известным "
                "данным через заданное время ожидания.",
                "data": {},
            },
        ]
        session.add(appeal)


def handlers() -> list[JobHandler]:
    """Every telephony job handler, for ``hub.jobs.job_handlers`` (imported there lazily)."""
    from hub.bitrix24.telephony import HANDLERS as B24_HANDLERS
    from hub.telephony_recordings import HANDLERS as RECORDING_HANDLERS

    return [JobHandler(SETTLE_JOB, run_settle), *RECORDING_HANDLERS, *B24_HANDLERS]
