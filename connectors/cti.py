"""A generic CTI endpoint, compatible with Zammad's generic CTI API, for self-hosted PBXs
(Asterisk, FreePBX) driven by a small dialplan script (docs/telephony.md).

``POST /hooks/cti/{source}?token=…`` (or header ``X-ClientHub-Token``), JSON or form-encoded,
with Zammad's events ``newCall`` {from, to, direction, callId, user, queue}, ``answer``
{answeringNumber}, ``hangup`` {cause, answeringNumber} (zammad-documentation
``api/generic-cti/*-event.rst``), plus ClientHub's additions: ``recording`` {callId,
recording_url} and, on any event, ``ivr_choice`` and ``duration``. A recording *file* goes to
``POST /telephony/cti/{source}/recording`` as multipart (hub/telephony_http.py), which stores it
and records a ``recording`` event pointing at the stored file. Answers ``{}`` as Zammad does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import (
    IgnoredEvent,
    InboundRequest,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SourceConfig,
    UnsupportedEvent,
    Verified,
)
from connectors.common import check_secret, json_object, urlencoded
from connectors.payload import Obj, PayloadError
from connectors.telephony_common import (
    as_int,
    call_appeal,
    check_ip,
    facts,
    include_outgoing,
    iso,
    number_or_raw,
    phone,
    short_hash,
)

CHANNEL = "cti"
# Zammad's hangup causes; only normalClearing after an answer is a conversation.
CAUSES = {"normalClearing", "busy", "cancel", "noAnswer", "congestion", "notFound", "forwarded"}
UNANSWERED = {"busy", "cancel", "noAnswer", "congestion", "notFound"}


def values_of(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type == "application/json":
        return json_object(body)
    if content_type == "application/x-www-form-urlencoded":
        return urlencoded(body)
    raise Rejected(415, "CTI events must be application/json or form-encoded")


def external_id(values: dict[str, Any]) -> str:
    event, call = str(values.get("event")), str(values.get("callId"))
    if event == "recording":
        ref = values.get("recording_url") or (values.get("file") or {}).get("file_id") or ""
        return f"{call}:recording:{short_hash(str(ref))}"
    return f"{call}:{event}"


def check_token(request: InboundRequest, source: SourceConfig) -> None:
    token = source.secrets.get("token")
    if not token:
        raise Rejected(403, "no CTI token configured for this source (secret 'token')")
    given = request.query.get("token") or request.headers.get("x-clienthub-token")
    check_secret(token, given, "CTI token (?token= or X-ClientHub-Token)")


class CtiConnector:
    channel = CHANNEL

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        check_token(request, source)
        check_ip(request, source)
        values = values_of(request.body, request.content_type)
        event, call = values.get("event"), values.get("callId")
        if not isinstance(event, str) or not event:
            raise Rejected(422, "CTI event without 'event'")
        if call in (None, ""):
            raise Rejected(422, "CTI event without 'callId'")
        if event == "recording" and not values.get("recording_url"):
            raise Rejected(422, "a recording event needs recording_url (or upload the file)")
        return Verified(
            external_id=external_id(values)[:255], event_type=event[:64], response_body=b"{}"
        )

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        handler = EVENT_HANDLERS.get(event.event_type or "")
        if handler is None:
            raise UnsupportedEvent(f"CTI event {event.event_type!r}")
        p = Obj(values_of(event.body, (event.content_type or "").split(";")[0].strip().lower()))
        call = p.opt_str("callId")
        if not call:
            raise PayloadError("callId: missing")
        at = iso(event.received_at)  # Zammad's events carry no time: the moment we stored it
        direction = str(p.raw("direction", "in")).lower()
        if direction == "out" and not include_outgoing(event.source_config):
            raise IgnoredEvent("outgoing call (include_outgoing is off)")
        found = {**_common(p, at, direction), **handler(p, at)}
        return [call_appeal(call, found, received_at=event.received_at)]


def _common(p: Obj, at: str | None, direction: str) -> dict[str, Any]:
    customer = p.raw("to") if direction == "out" else p.raw("from")
    line = p.raw("from") if direction == "out" else p.raw("to")
    return facts(
        at=at,
        direction="out" if direction == "out" else "in",
        caller=phone(customer),
        line=number_or_raw(line),
        ivr_choice=p.opt_str("ivr_choice"),
        queue=p.opt_str("queue"),
    )


def _new_call(p: Obj, at: str | None) -> dict[str, Any]:
    return facts(event="newCall", started_at=at)


def _answer(p: Obj, at: str | None) -> dict[str, Any]:
    return facts(
        event="answer",
        answered=True,
        answered_at=at,
        employee=p.opt_str("answeringNumber") or _user(p),
    )


def _hangup(p: Obj, at: str | None) -> dict[str, Any]:
    cause = p.opt_str("cause")
    if cause is not None and cause not in CAUSES:
        cause = f"other:{cause[:40]}"
    talked = cause == "normalClearing" and bool(p.opt_str("answeringNumber"))
    return facts(
        event="hangup",
        ended=True,
        ended_at=at,
        hangup_cause=cause,
        answered=True if talked else (False if cause in UNANSWERED else None),
        employee=p.opt_str("answeringNumber") if talked else None,
        duration=as_int(p.raw("duration")),
    )


def _recording(p: Obj, at: str | None) -> dict[str, Any]:
    url = p.opt_str("recording_url")
    stored = p.opt_obj("file")
    if stored is not None:
        ref = {
            "kind": "stored",
            "file_id": stored.req_str("file_id"),
            "name": stored.opt_str("name") or "recording",
            "size": stored.opt_int("size"),
            "media_type": stored.opt_str("media_type"),
        }
    else:
        ref = {"kind": "url", "url": url}
    return facts(event="recording", recording=facts(**ref))


def _user(p: Obj) -> str | None:
    user = p.raw("user")
    if isinstance(user, list):
        return str(user[0]) if len(user) == 1 else None
    return str(user) if user else None


EVENT_HANDLERS: dict[str, Callable[[Obj, str | None], dict[str, Any]]] = {
    "newCall": _new_call,
    "answer": _answer,
    "hangup": _hangup,
    "recording": _recording,
}

connector = CtiConnector()
