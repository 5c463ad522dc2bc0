"""OK events -> appeals, driven by ``EVENT_HANDLERS``.

``MESSAGE_CREATED`` is the Bot API webhook (apiok/documentation ``graph.user.subscribe``; the
2017 docs show no type field, so a body with ``message`` and no ``webhookType`` is a new
message). ``discussion_comment`` is ClientHub's own envelope around one comment fetched by the
discussions poller: ``{"group_id", "discussion": {"id", "type"}, "comment": {…}}`` with the
comment exactly as ``discussions.getComments`` returned it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Author, IgnoredEvent, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.payload import Obj

Handler = Callable[[Obj, RawEventView], list[ParsedAppeal]]
MOSCOW = ZoneInfo("Europe/Moscow")


def event_type(body: Obj) -> str | None:
    kind = body.opt_str("webhookType")
    if kind:
        return kind
    if body.has("message"):
        return "MESSAGE_CREATED"
    if body.has("comment") and body.has("discussion"):
        return "discussion_comment"
    return None


def _attachment(att: Obj) -> dict[str, Any]:
    kind = att.req_str("type")
    payload = att.opt_obj("payload")
    url = payload.opt_str("url") if payload is not None else None
    if url:
        return {"type": kind.lower(), "url": url}
    return {"type": kind.lower(), "note": f"вложение OK «{kind}»"}


def message_created(body: Obj, raw: RawEventView) -> list[ParsedAppeal]:
    sender = body.obj("sender")
    chat_id = body.obj("recipient").req_str("chat_id")
    msg = body.obj("message")
    attachments = [_attachment(a) for a in msg.objs("attachments")]
    text = msg.text("text")
    if not text.strip() and attachments:
        text = " ".join(f"[{a['type']}]" for a in attachments)
    ts = body.opt_int("timestamp")
    user_id = sender.req_str("user_id")
    fields: dict[str, Any] = {"chat_id": chat_id, "user_id": user_id, "mid": msg.req_str("mid")}
    if msg.has("seq"):
        fields["seq"] = msg.req_str("seq")  # beyond 2**53: kept exact as text
    if body.has("group_id"):
        fields["group_id"] = body.req_str("group_id")
    return [
        ParsedAppeal(
            kind="message",
            external_id=msg.req_str("mid"),
            thread_key=chat_id,  # one group<->user chat is one dialogue
            text=text,
            author=Author(name=sender.opt_str("name"), platform_id=user_id),
            attachments=attachments,
            fields=fields,
            received_at=datetime.fromtimestamp(ts / 1000, UTC) if ts else None,
        )
    ]


def _ok_date(value: str | None) -> datetime | None:
    # REST dates look like "2024-03-01 12:30:00", Moscow time (uncertain; see ADR 0004).
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=MOSCOW).astimezone(UTC)
    except ValueError:
        return None


def discussion_comment(body: Obj, raw: RawEventView) -> list[ParsedAppeal]:
    discussion = body.obj("discussion")
    topic_id = discussion.req_str("id")
    c = body.obj("comment")
    if c.opt_str("author_type") == "GROUP":
        raise IgnoredEvent("written by the group itself: our own answer")
    cid = c.req_str("id")
    group_id = body.req_str("group_id")
    fields: dict[str, Any] = {
        "group_id": group_id,
        "discussion_id": topic_id,
        "discussion_type": discussion.text("type") or "GROUP_TOPIC",
        "comment_id": cid,
        "author_id": c.opt_str("author_id"),
        "url": f"https://ok.ru/group/{group_id}/topic/{topic_id}",
    }
    if c.has("reply_to_comment_id"):
        fields["reply_to_comment_id"] = c.req_str("reply_to_comment_id")
    return [
        ParsedAppeal(
            kind="comment",
            external_id=f"comment:{topic_id}:{cid}",
            thread_key=f"topic:{topic_id}",
            text=c.text("text"),
            author=Author(name=c.opt_str("author_name"), platform_id=c.opt_str("author_id")),
            fields=fields,
            received_at=_ok_date(c.opt_str("date")),
        )
    ]


EVENT_HANDLERS: dict[str, Handler] = {
    "MESSAGE_CREATED": message_created,
    "discussion_comment": discussion_comment,
}


def parse_event(raw: RawEventView) -> list[ParsedAppeal]:
    body = Obj.from_json(raw.body)
    kind = event_type(body)
    handler = EVENT_HANDLERS.get(kind or "")
    if handler is None:
        raise UnsupportedEvent(f"OK event {kind or '(no webhookType)'!r} is not handled")
    return handler(body, raw)
