"""VK Callback API events (API 5.199) -> appeals, driven by ``EVENT_HANDLERS``.

Shapes follow the official schema (``VKCOM/vk-api-schema`` ``callback/objects.json``): messages are
``{message, client_info}``, comments are ``wall_wall_comment`` plus the owner of the commented
object. Ids: a message is ``(peer_id, conversation_message_id)`` because a community bot sees
``id: 0`` in chats; a comment is ``(owner_id, object id, comment id)``. A dialogue is one thread
per peer, and all comments under one post (photo, video, topic, product) are one thread, so a
deletion, which carries only the post and comment ids, still lands on the right deal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import Author, IgnoredEvent, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.payload import Obj, PayloadError


@dataclass(frozen=True)
class Envelope:
    type: str
    group_id: int
    event_id: str
    object: Obj


Handler = Callable[[Envelope, RawEventView], list[ParsedAppeal]]


def envelope(body: bytes) -> Envelope:
    root = Obj.from_json(body)
    return Envelope(
        type=root.req_str("type"),
        group_id=root.req_int("group_id"),
        event_id=root.req_str("event_id"),
        object=root.obj("object"),
    )


def _when(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _author(from_id: int) -> Author:
    return Author(platform_id=str(from_id))


def _profile(from_id: int) -> str:
    return f"https://vk.com/id{from_id}" if from_id > 0 else f"https://vk.com/club{-from_id}"


def _reject_own(env: Envelope, from_id: int) -> None:
    if from_id == -env.group_id:
        raise IgnoredEvent(f"written by the community itself (from_id {from_id}): our own echo")


# -- attachments: each becomes a link or a note, none is dropped ------------------------------
def _largest_photo_url(photo: Obj) -> str | None:
    sizes = [s for s in photo.objs("sizes") if s.has("url")]
    if not sizes:
        return None
    best = max(sizes, key=lambda s: (s.opt_int("width") or 0) * (s.opt_int("height") or 0))
    return best.req_str("url")


def _attachment(att: Obj) -> dict[str, Any]:
    kind = att.req_str("type")
    body = att.opt_obj(kind)
    if body is None:
        return {"type": kind, "note": f"вложение VK «{kind}» без данных"}
    if kind == "photo":
        owner, pid = body.req_int("owner_id"), body.req_int("id")
        return {
            "type": "photo",
            "url": _largest_photo_url(body) or f"https://vk.com/photo{owner}_{pid}",
            "page": f"https://vk.com/photo{owner}_{pid}",
        }
    if kind == "doc":
        return {
            "type": "doc",
            "url": body.req_str("url"),
            "name": body.text("title"),
            "size": body.opt_int("size"),
        }
    if kind == "audio_message":
        out: dict[str, Any] = {
            "type": "audio_message",
            "url": body.req_str("link_mp3"),
            "duration": body.opt_int("duration"),
        }
        if body.has("transcript"):
            out["transcript"] = body.text("transcript")
        return out
    if kind == "sticker":
        images = [i for i in body.objs("images") if i.has("url")]
        url = max(images, key=lambda i: i.opt_int("width") or 0).req_str("url") if images else None
        return {"type": "sticker", "note": "стикер", "sticker_id": body.opt_int("sticker_id")} | (
            {"url": url} if url else {}
        )
    if kind == "link":
        return {"type": "link", "url": body.req_str("url"), "title": body.text("title")}
    if kind == "wall":
        owner = body.opt_int("owner_id") or body.opt_int("to_id") or body.req_int("from_id")
        return {
            "type": "wall",
            "url": f"https://vk.com/wall{owner}_{body.req_int('id')}",
            "note": body.text("text")[:200],
        }
    if kind == "video":
        return {
            "type": "video",
            "url": f"https://vk.com/video{body.req_int('owner_id')}_{body.req_int('id')}",
            "title": body.text("title"),
        }
    if kind == "market":
        return {
            "type": "market",
            "url": f"https://vk.com/product{body.req_int('owner_id')}_{body.req_int('id')}",
            "title": body.text("title"),
        }
    return {"type": kind, "note": f"вложение VK «{kind}»"}


def _attachments(item: Obj) -> list[dict[str, Any]]:
    out = [_attachment(a) for a in item.objs("attachments")]
    for fwd in item.objs("fwd_messages"):
        out.append(
            {
                "type": "forwarded",
                "note": fwd.text("text"),
                "from": _profile(fwd.req_int("from_id")),
            }
        )
        out.extend(_attachments(fwd))
    return out


_LABELS = {
    "photo": "фото",
    "doc": "документ",
    "audio_message": "голосовое сообщение",
    "sticker": "стикер",
    "link": "ссылка",
    "wall": "запись",
    "video": "видео",
    "market": "товар",
    "forwarded": "пересланное сообщение",
}


def _text_or_summary(text: str, attachments: list[dict[str, Any]]) -> str:
    if text.strip() or not attachments:
        return text
    return " ".join(f"[{_LABELS.get(a['type'], a['type'])}]" for a in attachments)


# -- messages --------------------------------------------------------------------------------
def _message(env: Envelope, raw: RawEventView, msg: Obj, *, edit: bool) -> list[ParsedAppeal]:
    from_id = msg.req_int("from_id")
    if from_id < 0 or msg.flag("out"):
        raise IgnoredEvent(f"outgoing message of the community (from_id {from_id})")
    peer_id, cmid = msg.req_int("peer_id"), msg.req_int("conversation_message_id")
    external = f"msg:{peer_id}:{cmid}"
    if edit:
        external += f":edit:{msg.opt_int('update_time') or env.event_id}"
    attachments = _attachments(msg)
    fields: dict[str, Any] = {
        "group_id": env.group_id,
        "peer_id": peer_id,
        "conversation_message_id": cmid,
        "message_id": msg.opt_int("id"),
        "from_id": from_id,
        "profile": _profile(from_id),
        "url": f"https://vk.com/gim{env.group_id}?sel={peer_id}",
    }
    reply = msg.opt_obj("reply_message")
    if reply is not None:
        fields["reply_to_text"] = reply.text("text")
    return [
        ParsedAppeal(
            kind="message",
            external_id=external,
            thread_key=f"peer:{peer_id}",
            text=_text_or_summary(msg.text("text"), attachments),
            author=_author(from_id),
            attachments=attachments,
            fields=fields,
            received_at=_when(msg.opt_int("update_time") if edit else msg.opt_int("date")),
            is_edit=edit,
        )
    ]


def message_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    return _message(env, raw, env.object.obj("message"), edit=False)


def message_edit(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    return _message(env, raw, env.object, edit=True)


def message_reply(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    raise IgnoredEvent("message_reply is the community's own outgoing message")


# -- comments ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Commented:
    """What a comment is under: ``wall`` post, ``photo``, ``video``, board ``topic``, ``market``."""

    object: str
    owner_id: int
    object_id: int

    @property
    def thread_key(self) -> str:
        return f"{self.object}:{self.owner_id}_{self.object_id}"

    def url(self, comment_id: int, root: int | None) -> str:
        base = {
            "wall": f"https://vk.com/wall{self.owner_id}_{self.object_id}?reply={comment_id}",
            "photo": f"https://vk.com/photo{self.owner_id}_{self.object_id}",
            "video": f"https://vk.com/video{self.owner_id}_{self.object_id}",
            "topic": f"https://vk.com/topic{-abs(self.owner_id)}_{self.object_id}?post={comment_id}",
            "market": f"https://vk.com/product{self.owner_id}_{self.object_id}",
        }[self.object]
        return base + (f"&thread={root}" if self.object == "wall" and root else "")


def _comment(env: Envelope, c: Obj, on: Commented, *, edit: bool = False) -> list[ParsedAppeal]:
    from_id, cid = c.req_int("from_id"), c.req_int("id")
    _reject_own(env, from_id)
    stack = c.ints("parents_stack")
    root = stack[0] if stack else None
    external = f"{on.thread_key}:{cid}" + (f":edit:{env.event_id}" if edit else "")
    attachments = _attachments(c)
    fields: dict[str, Any] = {
        "group_id": env.group_id,
        "object": on.object,
        "owner_id": on.owner_id,
        "object_id": on.object_id,
        "comment_id": cid,
        "thread_root": root,
        "reply_to_comment": c.opt_int("reply_to_comment"),
        "from_id": from_id,
        "profile": _profile(from_id),
        "url": on.url(cid, root),
    }
    return [
        ParsedAppeal(
            kind="comment",
            external_id=external,
            thread_key=on.thread_key,
            text=_text_or_summary(c.text("text"), attachments),
            author=_author(from_id),
            attachments=attachments,
            fields=fields,
            received_at=_when(c.opt_int("date")),
            is_edit=edit,
        )
    ]


def _wall_owner(c: Obj) -> int:
    # Older captures carry only post_owner_id (research/channels.md §1.3).
    owner = c.opt_int("owner_id")
    return owner if owner is not None else c.req_int("post_owner_id")


def wall_reply_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    return _comment(env, c, Commented("wall", _wall_owner(c), c.req_int("post_id")))


def wall_reply_edit(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    return _comment(env, c, Commented("wall", _wall_owner(c), c.req_int("post_id")), edit=True)


def wall_reply_delete(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    """A deletion is noted on the thread's deal; the deleted comment's appeal stays as it was."""
    d = env.object
    on = Commented("wall", d.req_int("owner_id"), d.req_int("post_id"))
    cid = d.req_int("id")
    # vksdk names the remover deleter_id; the Schema has user_id.
    deleter = d.opt_int("deleter_id") or d.opt_int("user_id")
    who = "автором" if deleter is None else f"пользователем {_profile(deleter)}"
    if deleter == -env.group_id or (deleter is not None and deleter < 0):
        who = "сообществом"
    return [
        ParsedAppeal(
            kind="comment",
            external_id=f"{on.thread_key}:{cid}:delete",
            thread_key=on.thread_key,
            text=f"Комментарий {cid} удалён {who}.",
            author=Author(platform_id=str(deleter) if deleter is not None else None),
            fields={
                "group_id": env.group_id,
                "object": "wall",
                "owner_id": on.owner_id,
                "object_id": on.object_id,
                "comment_id": cid,
                "deleted": True,
                "deleter_id": deleter,
                "url": on.url(cid, None),
            },
            is_edit=True,
        )
    ]


def photo_comment_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    return _comment(env, c, Commented("photo", c.req_int("photo_owner_id"), c.req_int("photo_id")))


def video_comment_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    return _comment(env, c, Commented("video", c.req_int("video_owner_id"), c.req_int("video_id")))


def board_post_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    owner = c.opt_int("topic_owner_id")
    return _comment(
        env,
        c,
        Commented("topic", owner if owner is not None else -env.group_id, c.req_int("topic_id")),
    )


def market_comment_new(env: Envelope, raw: RawEventView) -> list[ParsedAppeal]:
    c = env.object
    return _comment(env, c, Commented("market", c.req_int("market_owner_id"), c.req_int("item_id")))


EVENT_HANDLERS: dict[str, Handler] = {
    "message_new": message_new,
    "message_edit": message_edit,
    "message_reply": message_reply,
    "wall_reply_new": wall_reply_new,
    "wall_reply_edit": wall_reply_edit,
    "wall_reply_delete": wall_reply_delete,
    "photo_comment_new": photo_comment_new,
    "video_comment_new": video_comment_new,
    "board_post_new": board_post_new,
    "market_comment_new": market_comment_new,
}


def parse_event(raw: RawEventView) -> list[ParsedAppeal]:
    env = envelope(raw.body)
    handler = EVENT_HANDLERS.get(env.type)
    if handler is None:
        raise UnsupportedEvent(f"VK event type {env.type!r} is not handled")
    return handler(env, raw)


__all__ = ["EVENT_HANDLERS", "Envelope", "PayloadError", "envelope", "parse_event"]
