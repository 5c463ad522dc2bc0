"""Yandex Business review events -> appeals, driven by ``EVENT_HANDLERS``.

The poller's envelopes are ``{"platform", "org_id", "event", "review": <cabinet item>}`` with the
item as ``/sprav/api/{id}/reviews`` lists it: ``id, author{user, uid}, time_created, snippet,
full_text, rating, owner_comment{text, time_created}|null, photos[{link}]`` (ya-business-api
models). The cabinet has no "hidden" flag: a review hidden by moderation or deleted by its author
just leaves the list, and arrives here as ``review_deleted``. ``notification_email`` is a Yandex
"new review" e-mail filed under this organisation by the IMAP poller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.base import Author, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.payload import Obj
from connectors.reviews import DELETED, EDITED, NEW, Seen, review_appeal

Handler = Callable[[RawEventView], list[ParsedAppeal]]
PHOTO_HOST = "https://avatars.mds.yandex.net"  # photo links are relative (uncertain)


def org_url(org_id: str) -> str:
    return f"https://yandex.ru/maps/org/{org_id}/reviews/"


def _moment(value: int | None) -> datetime | None:
    if not value:
        return None
    seconds = value / 1000 if value > 10**11 else value  # seconds in some captures, ms in others
    return datetime.fromtimestamp(seconds, UTC)


def seen(item: dict[str, Any]) -> Seen:
    r = Obj(item, "review")
    author = r.opt_obj("author")
    when = _moment(r.opt_int("time_created"))
    return Seen(
        id=r.req_str("id"),
        rating=r.opt_int("rating"),
        text=r.text("full_text") or r.text("snippet"),
        hidden=False,
        created=when.isoformat() if when else "",
        author=author.opt_str("user") if author else None,
        item=item,
    )


def _photos(r: Obj) -> list[str]:
    links = [p.get("link") for p in r.raw("photos", []) if isinstance(p, dict)]
    return [
        link if link.startswith("http") else PHOTO_HOST + link
        for link in links
        if isinstance(link, str) and link
    ]


def _review(kind: str) -> Handler:
    def handle(raw: RawEventView) -> list[ParsedAppeal]:
        body = Obj.from_json(raw.body)
        org = body.req_str("org_id")
        r = body.obj("review")
        s = seen(dict(r.data))
        author = r.opt_obj("author")
        fields: dict[str, Any] = {"platform": "yandex", "org_id": org, "url": org_url(org)}
        answer = r.opt_obj("owner_comment")
        if answer is not None:
            fields["business_answer"] = answer.text("text")
        return [
            review_appeal(
                kind=kind,
                external_id=raw.external_id or f"review:{s.id}",
                review_id=s.id,
                text=s.text,
                rating=s.rating,
                author=Author(name=s.author, platform_id=author.opt_str("uid") if author else None),
                config=raw.source_config,
                fields=fields,
                when=_moment(r.opt_int("time_created")),
                photos=_photos(r),
            )
        ]

    return handle


def review_deleted(raw: RawEventView) -> list[ParsedAppeal]:
    body = Obj.from_json(raw.body)
    org = body.req_str("org_id")
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
            fields={"platform": "yandex", "org_id": org, "url": org_url(org)},
        )
    ]


def notification_email(raw: RawEventView) -> list[ParsedAppeal]:
    from connectors.email.notifications import parse_notification_event

    return parse_notification_event(raw)


EVENT_HANDLERS: dict[str, Handler] = {
    NEW: _review(NEW),
    EDITED: _review(EDITED),
    DELETED: review_deleted,
    "notification_email": notification_email,
}


def parse_event(raw: RawEventView) -> list[ParsedAppeal]:
    handler = EVENT_HANDLERS.get(raw.event_type or "")
    if handler is None:
        raise UnsupportedEvent(f"Yandex event {raw.event_type or '(none)'!r} is not handled")
    return handler(raw)
