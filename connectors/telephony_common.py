"""What the PBX connectors (Mango, UIS, generic CTI) share: one shape for the facts of a call event.

A call reaches us as several events (legs, a summary, a recording), in any order and sometimes
twice. Each connector turns one event into a ``ParsedAppeal`` whose ``external_id`` is the PBX's
call id and whose ``fields`` hold only what *this* event says about the call, under the names
below. ``hub/telephony.py`` folds the facts of all events of a call into one appeal, so that the
result does not depend on the order in which the events came.

Fact names (all optional): ``call_id``, ``event``, ``at`` (ISO time of the event), ``seq``,
``direction`` (in/out), ``caller`` and ``line`` (E.164 when the number is a phone), ``ivr_choice``,
``scenario``, ``queue``, ``employee``, ``started_at``, ``answered_at``, ``ended_at``,
``answered`` (bool), ``ended`` (bool), ``duration`` (talk seconds), ``wait_seconds``,
``hangup_cause``, ``recording`` (``{"kind": "url", "url"}``, ``{"kind": "mango",
"recording_id"}`` or ``{"kind": "stored", "file_id", "name", "size"}``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from connectors.base import Author, InboundRequest, ParsedAppeal, Rejected, SourceConfig

KIND = "call"
MSK = ZoneInfo("Europe/Moscow")


def phone(raw: Any) -> str | None:
    """E.164 for a phone number in any spelling («79161234567», «8 916…»); None for SIP URIs,
    extensions and anything else that is not a phone."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or "@" in text or text.lower().startswith("sip:"):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 10:
        return None
    if len(digits) == 11 and digits[0] in "78" and not text.startswith("+"):
        text = "+7" + digits[1:]
    elif not text.startswith("+"):
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def number_or_raw(raw: Any) -> str | None:
    """A dialled line as E.164 when it is a phone, else as given (a SIP URI, a short number)."""
    if raw in (None, ""):
        return None
    return phone(raw) or str(raw).strip()[:64]


def from_unix(value: Any) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


def from_local(value: Any, zone: ZoneInfo = MSK) -> datetime | None:
    """``2024-06-03 15:24:57`` in the PBX's zone (UIS sends local Moscow time), or ISO with
    an offset."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def as_int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def facts(**values: Any) -> dict[str, Any]:
    """The facts of one event, without the ones it does not know."""
    return {k: v for k, v in values.items() if v is not None and v != ""}


def call_appeal(
    call_id: str, event_facts: dict[str, Any], *, received_at: datetime | None = None
) -> ParsedAppeal:
    """One event of one call as an appeal keyed by the call (``external_id``): the first event
    creates the appeal, the others are merged into it by hub/telephony.py."""
    caller = event_facts.get("caller")
    if received_at is None:
        stamp = event_facts.get("started_at") or event_facts.get("at")
        received_at = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    return ParsedAppeal(
        kind=KIND,
        external_id=call_id,
        thread_key=f"call:{call_id}",
        text=describe(event_facts),
        author=Author(phone=caller if isinstance(caller, str) and caller.startswith("+") else None),
        fields={"call_id": call_id, **event_facts},
        received_at=received_at,
    )


def _minutes(seconds: int) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} мин {rest:02d} с" if minutes else f"{rest} с"


def describe(f: Mapping[str, Any]) -> str:
    """The appeal's text: what happened on the call, in Russian, for the CRM comment and the UI.
    Written without topic words, so that the text never decides a topic by itself."""
    direction = "Исходящий" if f.get("direction") == "out" else "Входящий"
    head = f"{direction} звонок"
    if f.get("caller"):
        head += f" с номера {f['caller']}"
    if f.get("line"):
        name = f" («{f['line_name']}»)" if f.get("line_name") else ""
        head += f" на линию {f['line']}{name}"
    parts = [head]
    if f.get("ivr_choice"):
        parts.append(f"выбор в голосовом меню: {f['ivr_choice']}")
    if f.get("scenario"):
        parts.append(f"сценарий: {f['scenario']}")
    if f.get("answered"):
        talk = f", разговор {_minutes(f['duration'])}" if f.get("duration") else ""
        who = f" ({f['employee']})" if f.get("employee") else ""
        parts.append(f"отвечен{who}{talk}")
    elif f.get("ended"):
        wait = f", ожидание {_minutes(f['wait_seconds'])}" if f.get("wait_seconds") else ""
        parts.append(f"пропущен{wait}")
    else:
        parts.append("идёт или не завершён")
    if f.get("recording"):
        parts.append("есть запись разговора")
    return "; ".join(parts) + "."


def check_ip(request: InboundRequest, source: SourceConfig) -> None:
    """``allowed_ips`` (CIDRs) in the source config: the PBX's published addresses."""
    allowed = source.config.get("allowed_ips") or []
    if not allowed:
        return
    try:
        addr = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        raise Rejected(403, "the client address is unknown; allowed_ips is set") from None
    for net in allowed:
        if addr in ipaddress.ip_network(str(net), strict=False):
            return
    raise Rejected(403, f"address {addr} is not in this source's allowed_ips")


def include_outgoing(config: Mapping[str, Any]) -> bool:
    """Outgoing calls are staff calling out, not appeals; a source may still want them."""
    return bool(config.get("include_outgoing", False))


def event_from_path(path: str, base_depth: int = 4) -> str | None:
    """The tail after ``/hooks/{channel}/{source}``: ``/events/call`` -> ``events/call``."""
    parts = [p for p in path.split("/") if p]
    tail = parts[base_depth - 1 :] if len(parts) >= base_depth else []
    return "/".join(tail) or None


__all__ = [
    "KIND",
    "MSK",
    "as_int",
    "call_appeal",
    "check_ip",
    "describe",
    "event_from_path",
    "facts",
    "from_local",
    "from_unix",
    "include_outgoing",
    "iso",
    "number_or_raw",
    "phone",
    "short_hash",
]
