"""UIS / CoMagic notifications: the admin writes one notification per event in the cabinet
(Сервисы и статистика → Уведомления), each a POST with a body template of ``{{variables}}``.

UIS signs nothing (research/channels.md §7.2), so each notification URL carries our secret
(``?secret=…``; not in the body, which is stored with the raw event); ``allowed_ips`` can pin
UIS's addresses too. The event is named by the URL, ``/hooks/uis/{source}/{event}``, with
``event`` one of ``incoming_call``, ``call_finished``, ``recorded_call``, ``lost_call``. The body
is JSON (the templates in docs/telephony.md) or form-encoded. ``call_session_id`` is the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

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
    MSK,
    as_int,
    call_appeal,
    check_ip,
    event_from_path,
    facts,
    from_local,
    include_outgoing,
    iso,
    number_or_raw,
    phone,
    short_hash,
)

CHANNEL = "uis"


def _values(body: bytes, content_type: str) -> dict[str, Any]:
    if content_type == "application/json":
        return json_object(body)
    if content_type == "application/x-www-form-urlencoded":
        return urlencoded(body)
    raise Rejected(415, "UIS notifications must be application/json or form-encoded")


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _event(request: InboundRequest, values: Mapping[str, Any]) -> str:
    name = event_from_path(request.path) or request.query.get("event") or values.get("event")
    if not isinstance(name, str) or not name:
        raise Rejected(404, "name the UIS event in the URL: /hooks/uis/{source}/{event}")
    return name.strip("/")[:64]


class UisConnector:
    channel = CHANNEL

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        secret = source.secrets.get("secret")
        if not secret:
            raise Rejected(403, "no UIS secret configured for this source (secret 'secret')")
        check_ip(request, source)
        values = _values(request.body, request.content_type)
        given = request.query.get("secret") or request.headers.get("x-clienthub-token")
        check_secret(secret, given, "UIS secret (?secret= in the notification URL)")
        name = _event(request, values)
        session = values.get("call_session_id")
        if session in (None, ""):
            raise Rejected(422, "UIS notification without call_session_id")
        key = f"{name}:{session}"
        if name == "recorded_call":
            key += f":{short_hash(str(values.get('file_link') or ''))}"
        return Verified(external_id=key[:255], event_type=name)

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        handler = EVENT_HANDLERS.get(event.event_type or "")
        if handler is None:
            raise UnsupportedEvent(f"UIS event {event.event_type!r}")
        values = _values(event.body, _media(event.content_type))
        p = Obj(values)
        session = p.opt_str("call_session_id")
        if not session:
            raise PayloadError("call_session_id: missing")
        zone = ZoneInfo(str(event.source_config.get("timezone") or MSK.key))
        found = handler(p, zone)
        if found.get("direction") == "out" and not include_outgoing(event.source_config):
            raise IgnoredEvent("outgoing call (include_outgoing is off)")
        return [call_appeal(session, found)]


def _common(p: Obj, zone: ZoneInfo, event: str) -> dict[str, Any]:
    return facts(
        event=event,
        at=iso(from_local(p.raw("notification_time"), zone)),
        caller=phone(p.raw("contact_phone_number")),
        line=number_or_raw(p.raw("virtual_phone_number")),
        scenario=p.opt_str("scenario_name"),
        ivr_choice=p.opt_str("ivr_choice"),  # a template may add the menu choice explicitly
        contact_name=p.opt_str("contact_full_name"),
    )


def _incoming(p: Obj, zone: ZoneInfo) -> dict[str, Any]:
    base = _common(p, zone, "incoming_call")
    return {**base, "direction": "in", **facts(started_at=base.get("at"))}


def _finished(p: Obj, zone: ZoneInfo) -> dict[str, Any]:
    talk = as_int(p.raw("talk_time_duration")) or 0
    direction = {"in": "in", "out": "out"}.get(str(p.raw("direction", "")).lower())
    return {
        **_common(p, zone, "call_finished"),
        **facts(
            direction=direction,
            employee=p.opt_str("employee_full_name") if talk else None,
            answered=talk > 0,
            ended=True,
            ended_at=iso(from_local(p.raw("notification_time"), zone)),
            duration=talk,
            wait_seconds=as_int(p.raw("wait_time_duration")),
            total_seconds=as_int(p.raw("total_time_duration")),
            uis_tags=p.opt_str("tag_names"),
        ),
    }


def _recorded(p: Obj, zone: ZoneInfo) -> dict[str, Any]:
    link = p.opt_str("file_link")
    return {
        **_common(p, zone, "recorded_call"),
        **facts(
            employee=p.opt_str("employee_full_name"),
            answered=True if link else None,  # only a conversation is recorded
            recording={"kind": "url", "url": link} if link else None,
            recording_seconds=as_int(p.raw("file_duration")),
        ),
    }


def _lost(p: Obj, zone: ZoneInfo) -> dict[str, Any]:
    return {
        **_common(p, zone, "lost_call"),
        **facts(
            direction="in",
            answered=False,
            ended=True,
            ended_at=iso(from_local(p.raw("notification_time"), zone)),
            wait_seconds=as_int(p.raw("wait_time_duration")),
        ),
    }


EVENT_HANDLERS: dict[str, Callable[[Obj, ZoneInfo], dict[str, Any]]] = {
    "incoming_call": _incoming,
    "call_finished": _finished,
    "recorded_call": _recorded,
    "lost_call": _lost,
}

connector = UisConnector()
