"""Mango Office VPBX API: call events in, recordings downloaded through the signed query.

Mango posts to ``{base}/events/call``, ``/events/summary``, ``/events/recording`` (and
``/events/dtmf``), the base being ``https://hub/hooks/mango/{source}``. The body is
``application/x-www-form-urlencoded`` with ``vpbx_api_key``, ``sign`` and ``json`` (a JSON
*string*); ``sign = sha256_hex(vpbx_api_key + json + vpbx_api_salt)`` over the exact ``json``
received (research/channels.md §7.1). Source secrets: ``key`` (vpbx_api_key) and ``salt``. Config:
``api_url`` (default ``https://app.mango-office.ru/vpbx``), ``lines`` (per-line name and
``callback_task``), ``include_outgoing``.

The whole call (``entry_id``) is one appeal; ``call_id`` is one leg of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
from connectors.common import urlencoded
from connectors.payload import Obj, PayloadError
from connectors.telephony_common import (
    as_int,
    call_appeal,
    event_from_path,
    facts,
    from_unix,
    include_outgoing,
    iso,
    number_or_raw,
    phone,
    short_hash,
)

CHANNEL = "mango"
DEFAULT_API_URL = "https://app.mango-office.ru/vpbx"
# summary.call_direction: 1 inbound, 2 outbound, 0 internal (Mango VPBX API; codes beyond these
# are not documented in the sources we read, so they count as unknown).
DIRECTIONS = {1: "in", 2: "out", 0: "internal"}


# A signed event older than this is refused as a replay (the signature covers its timestamp, so
# it cannot be refreshed). Generous: a PBX re-sends what we did not acknowledge for a while.
REPLAY_WINDOW_HOURS = 24.0
FUTURE_SKEW_SECONDS = 300.0


def check_fresh(p: Obj, config: dict[str, Any], now: float) -> None:
    """Refuse a replayed event: its signed ``timestamp`` (or ``end_time``/``create_time`` for a
    summary) outside the window. Events without a time are left to deduplication."""
    at = 0
    for key in ("timestamp", "end_time", "create_time"):
        try:
            at = as_int(p.raw(key)) or 0
        except OverflowError:  # "1e999": not a time
            at = 0
        if at > 0:
            break
    if not at:
        return
    window = float(config.get("replay_window_hours") or REPLAY_WINDOW_HOURS) * 3600
    if at < now - window:
        hours = (now - at) / 3600
        raise Rejected(
            403, f"Mango event is {hours:.0f} h old, outside the replay window of "
            f"{window / 3600:g} h (source setting replay_window_hours)",
        )  # fmt: skip
    if at > now + FUTURE_SKEW_SECONDS:
        raise Rejected(403, "Mango event timestamp is in the future (check the PBX clock)")


def signature(key: str, json_text: str, salt: str) -> str:
    return hashlib.sha256((key + json_text + salt).encode()).hexdigest()


def _body(raw: bytes) -> tuple[dict[str, Any], str]:
    form = urlencoded(raw)
    json_text = form.get("json")
    if not isinstance(json_text, str):
        raise Rejected(422, "Mango event without a 'json' field")
    return form, json_text


def _payload(json_text: str) -> Obj:
    try:
        value = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise Rejected(400, f"'json' is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise Rejected(422, "'json' must be a JSON object")
    return Obj(value)


def _event_name(path: str) -> str:
    tail = event_from_path(path) or ""
    if not tail.startswith("events/"):
        raise Rejected(404, "Mango posts to {base}/events/call, /events/summary, /events/recording")
    return tail.removeprefix("events/").split("/")[0][:64]


def _external_id(name: str, p: Obj, json_text: str) -> str:
    entry = p.opt_str("entry_id") or ""
    if name == "call":
        return f"call:{entry}:{p.opt_str('call_id')}:{p.opt_int('seq')}:{p.opt_str('call_state')}"
    if name == "summary":
        return f"summary:{entry}"
    if name == "recording":
        rec = p.opt_str("recording_id")
        return f"recording:{entry}:{rec}:{p.opt_str('recording_state')}"
    if name == "dtmf":
        return f"dtmf:{entry}:{p.opt_str('call_id')}:{p.opt_int('seq')}"
    return f"{name}:{short_hash(json_text)}"


class MangoConnector:
    channel = CHANNEL
    now: Callable[[], float] = staticmethod(time.time)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        key, salt = source.secrets.get("key"), source.secrets.get("salt")
        if not key or not salt:
            # An empty secret verifies against an empty key, which anyone can forge.
            raise Rejected(403, "no Mango vpbx_api_key/salt configured (secrets 'key', 'salt')")
        if request.content_type != "application/x-www-form-urlencoded":
            raise Rejected(415, "Mango posts application/x-www-form-urlencoded")
        name = _event_name(request.path)
        form, json_text = _body(request.body)
        given_key, given_sign = form.get("vpbx_api_key"), form.get("sign")
        if not isinstance(given_key, str) or not isinstance(given_sign, str):
            raise Rejected(403, "Mango event without vpbx_api_key or sign")
        key_ok = hmac.compare_digest(given_key.encode(), key.encode())
        expected = signature(key, json_text, salt)
        sign_ok = hmac.compare_digest(given_sign.strip().lower().encode(), expected.encode())
        if not (key_ok and sign_ok):
            raise Rejected(403, "Mango signature or vpbx_api_key is wrong")
        p = _payload(json_text)
        check_fresh(p, source.config, self.now())
        return Verified(external_id=_external_id(name, p, json_text)[:255], event_type=name)

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        handler = EVENT_HANDLERS.get(event.event_type or "")
        if handler is None:
            raise UnsupportedEvent(f"Mango event {event.event_type!r}")
        _form, json_text = _body(event.body)
        p = _payload(json_text)
        entry = p.opt_str("entry_id")
        if not entry:
            raise PayloadError("entry_id: missing")
        found = handler(p, event)
        if found is None:
            raise IgnoredEvent(f"Mango {event.event_type} event carries nothing for the appeal")
        if found.get("direction") == "out" and not include_outgoing(event.source_config):
            raise IgnoredEvent("outgoing call (include_outgoing is off)")
        if found.get("direction") == "internal":
            raise IgnoredEvent("internal call between extensions")
        return [call_appeal(entry, found)]


def _at(p: Obj) -> str | None:
    return iso(from_unix(p.raw("timestamp")))


def _party(p: Obj, key: str) -> Obj:
    return p.opt_obj(key) or Obj({}, key)


def _call(p: Obj, event: RawEventView) -> dict[str, Any]:
    """``/events/call``: one leg changes state. ``Connected`` at an ``abonent`` means somebody
    answered; the end of the whole call comes with the summary."""
    src, dst = _party(p, "from"), _party(p, "to")
    state, location = p.opt_str("call_state"), p.opt_str("location")
    answered = True if state == "Connected" and location == "abonent" else None
    outgoing = bool(src.opt_str("extension")) and not dst.opt_str("extension")
    return facts(
        event=f"call.{state or '?'}",
        at=_at(p),
        seq=p.opt_int("seq"),
        direction="out" if outgoing else None,
        caller=phone(dst.raw("number") if outgoing else src.raw("number")),
        line=number_or_raw(dst.raw("line_number")),
        queue=dst.opt_str("acd_group"),
        employee=dst.opt_str("extension") if answered else None,
        answered=answered,
        answered_at=_at(p) if answered else None,
        hangup_cause=p.opt_str("disconnect_reason") if state == "Disconnected" else None,
    )


def _summary(p: Obj, event: RawEventView) -> dict[str, Any]:
    """``/events/summary``: the whole entry at its end. ``talk_time`` is the unix time the talk
    began, 0 when nobody answered (research/channels.md §7.1)."""
    src, dst = _party(p, "from"), _party(p, "to")
    direction = DIRECTIONS.get(as_int(p.raw("call_direction")) or -1)
    created, talk, end = (as_int(p.raw(k)) or 0 for k in ("create_time", "talk_time", "end_time"))
    answered = talk > 0
    customer = dst.raw("number") if direction == "out" else src.raw("number")
    return facts(
        event="summary",
        at=iso(from_unix(end)),
        direction=direction,
        caller=phone(customer),
        line=number_or_raw(p.raw("line_number")),
        employee=dst.opt_str("extension") if answered and direction != "out" else None,
        started_at=iso(from_unix(created)),
        answered_at=iso(from_unix(talk)),
        ended_at=iso(from_unix(end)),
        answered=answered,
        ended=True,
        duration=max(0, end - talk) if answered and end else 0,
        wait_seconds=max(0, (talk or end) - created) if created and (talk or end) else None,
        hangup_cause=str(p.raw("disconnect_reason", "")) or None,
        entry_result=as_int(p.raw("entry_result")),
    )


def _recording(p: Obj, event: RawEventView) -> dict[str, Any]:
    """``/events/recording``: only a ``Completed`` recording can be downloaded."""
    rec_id, state = p.opt_str("recording_id"), p.opt_str("recording_state")
    done = state == "Completed" and rec_id
    return facts(
        event=f"recording.{state or '?'}",
        at=_at(p),
        seq=p.opt_int("seq"),
        recording={"kind": "mango", "recording_id": rec_id} if done else None,
    )


def _dtmf(p: Obj, event: RawEventView) -> dict[str, Any] | None:
    """``/events/dtmf``: the keys pressed in the voice menu (field names per Mango's VPBX API
    description: ``dtmf``, ``location``; not seen in a capture, so read defensively)."""
    digits = p.opt_str("dtmf")
    if not digits or p.opt_str("location") not in (None, "ivr"):
        return None
    return facts(event="dtmf", at=_at(p), seq=p.opt_int("seq"), ivr_choice=digits[:32])


EVENT_HANDLERS: dict[str, Callable[[Obj, RawEventView], dict[str, Any] | None]] = {
    "call": _call,
    "summary": _summary,
    "recording": _recording,
    "dtmf": _dtmf,
}


def recording_link(
    *, api_url: str, key: str, salt: str, recording_id: str, valid_seconds: int = 600
) -> str:
    """A temporary download link: ``{api}/queries/recording/link/{id}/download/{key}/{ts}/{sign}``
    with ``sign = sha256(key + ts + recording_id + salt)``, valid until ``ts``."""
    expires = str(int(time.time()) + valid_seconds)
    sign = hashlib.sha256((key + expires + recording_id + salt).encode()).hexdigest()
    base = api_url.rstrip("/")
    return f"{base}/queries/recording/link/{recording_id}/download/{key}/{expires}/{sign}"


connector = MangoConnector()
