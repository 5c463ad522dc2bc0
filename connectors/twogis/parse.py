"""2GIS review events -> appeals, driven by ``EVENT_HANDLERS``.

``review``/``review_edited``/``review_hidden``/``review_deleted`` are ClientHub's envelopes from
the cabinet poller (``{"platform", "branch_id", "event", "review": <cabinet item>}``; a deleted
review carries ``last_known`` instead of the item). ``notification_email`` is a 2GIS "new review"
e-mail that the IMAP poller filed under this branch (connectors.email.notifications).
Cabinet item fields (integrator code; uncertain beyond ``id, rating, text, dateCreated, user``):
``dateEdited``, ``isHidden``, ``hidingReason``, ``photos[].url``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.base import Author, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.payload import Obj
from connectors.reviews import DELETED, EDITED, HIDDEN, NEW, NOTES, Seen, review_appeal

JsonHandler = Callable[[Obj, RawEventView], list[ParsedAppeal]]
Handler = Callable[[RawEventView], list[ParsedAppeal]]


def branch_url(branch_id: str) -> str:
    return f"https://2gis.ru/firm/{branch_id}/tab/reviews"


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def seen(item: dict[str, Any]) -> Seen:
    """A cabinet item as the scan compares it."""
    r = Obj(item, "review")
    user = r.opt_obj("user")
    return Seen(
        id=r.req_str("id"),
        rating=r.opt_int("rating"),
        text=r.text("text"),
        hidden=r.flag("isHidden"),
        created=r.text("dateCreated"),
        author=user.opt_str("name") if user else None,
        item=item,
    )


def _photos(r: Obj) -> list[str]:
    out = []
    for p in r.raw("photos", []):
        url = p.get("url") if isinstance(p, dict) else p
        if isinstance(url, str) and url.startswith("http"):
            out.append(url)
    return out


def _json(handler: JsonHandler) -> Handler:
    return lambda raw: handler(Obj.from_json(raw.body), raw)


def _review(kind: str) -> JsonHandler:
    def handle(body: Obj, raw: RawEventView) -> list[ParsedAppeal]:
        branch = body.req_str("branch_id")
        r = body.obj("review")
        s = seen(dict(r.data))
        user = r.opt_obj("user")
        fields: dict[str, Any] = {
            "platform": "2gis",
            "branch_id": branch,
            "url": branch_url(branch),
        }
        note = None
        if s.hidden:
            fields["hidden"] = True
            reason = r.opt_str("hidingReason")
            if reason:
                fields["hiding_reason"] = reason
            if kind == HIDDEN:
                note = f"{NOTES[HIDDEN]}: {reason}." if reason else f"{NOTES[HIDDEN]}."
        edited = r.opt_str("dateEdited") if kind != NEW else None
        return [
            review_appeal(
                kind=kind,
                external_id=raw.external_id or f"review:{s.id}",
                review_id=s.id,
                text=s.text,
                rating=s.rating,
                author=Author(
                    name=s.author, platform_id=user.opt_str("id") if user is not None else None
                ),
                config=raw.source_config,
                fields=fields,
                when=_when(edited or s.created),
                photos=_photos(r),
                note=note,
            )
        ]

    return handle


def review_deleted(body: Obj, raw: RawEventView) -> list[ParsedAppeal]:
    branch = body.req_str("branch_id")
    rid = body.obj("review").req_str("id")
    last = body.opt_obj("last_known")
    return [
        review_appeal(
            kind=DELETED,
            external_id=raw.external_id or f"review:{rid}:deleted",
            review_id=rid,
            text="",
            rating=last.opt_int("r") if last else None,
            author=Author(name=last.opt_str("a") if last else None),
            config=raw.source_config,
            fields={"platform": "2gis", "branch_id": branch, "url": branch_url(branch)},
        )
    ]


def notification_email(raw: RawEventView) -> list[ParsedAppeal]:
    from connectors.email.notifications import parse_notification_event

    return parse_notification_event(raw)


EVENT_HANDLERS: dict[str, Handler] = {
    NEW: _json(_review(NEW)),
    EDITED: _json(_review(EDITED)),
    HIDDEN: _json(_review(HIDDEN)),
    DELETED: _json(review_deleted),
    "notification_email": notification_email,
}


def parse_event(raw: RawEventView) -> list[ParsedAppeal]:
    handler = EVENT_HANDLERS.get(raw.event_type or "")
    if handler is None:
        raise UnsupportedEvent(f"2GIS event {raw.event_type or '(none)'!r} is not handled")
    return handler(raw)
