"""Telegram updates -> appeals, driven by ``EVENT_HANDLERS``; python-telegram-bot's
``Update.de_json`` gives the typed objects (ADR 0004).

Comments under channel posts are messages in the linked discussion group: the post itself arrives
there as an automatic forward (``is_automatic_forward``, ignored: it is ours), and each comment
is a reply in the thread whose ``message_thread_id`` is that forward's message id (tdlib/telegram-
bot-api#36). One thread per post, one per private chat, one per (group, user) otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from telegram import Message, Update
from telegram.warnings import PTBDeprecationWarning

from connectors.base import Author, IgnoredEvent, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.payload import Obj, PayloadError

Handler = Callable[[Update, RawEventView], list[ParsedAppeal]]


def file_path(source: str, file_id: str) -> str:
    """ClientHub's own link to a Telegram file: the file proxy fetches it through ``getFile`` on
    demand, so the bot token never appears in a link shown to staff."""
    return f"/files/telegram/{source}/{file_id}"


def _file(kind: str, source: str, f: Any, **extra: Any) -> dict[str, Any]:
    out = {
        "type": kind,
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "size": f.file_size,
        "url": file_path(source, f.file_id),
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def _seconds(f: Any) -> int | None:
    # PTB 22.2+ warns that ``duration`` becomes a timedelta; accept either.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = f.duration
    return int(value.total_seconds()) if isinstance(value, timedelta) else value


def _attachments(msg: Message, source: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if msg.photo:
        best = max(msg.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        out.append(_file("photo", source, best, width=best.width, height=best.height))
    for kind in ("document", "audio", "video", "animation"):
        f = getattr(msg, kind)
        if f is not None:
            out.append(_file(kind, source, f, name=f.file_name, mime_type=f.mime_type))
    if msg.voice is not None:
        v = msg.voice
        out.append(_file("voice", source, v, duration=_seconds(v), mime_type=v.mime_type))
    if msg.video_note is not None:
        out.append(_file("video_note", source, msg.video_note, duration=_seconds(msg.video_note)))
    if msg.sticker is not None:
        out.append(_file("sticker", source, msg.sticker, note=f"стикер {msg.sticker.emoji or ''}"))
    if msg.location is not None:
        lat, lon = msg.location.latitude, msg.location.longitude
        out.append(
            {
                "type": "location",
                "note": f"{lat}, {lon}",
                "url": f"https://maps.yandex.ru/?pt={lon},{lat}&z=16",
            }
        )
    if msg.contact is not None:
        c = msg.contact
        name = " ".join(p for p in (c.first_name, c.last_name) if p)
        out.append({"type": "contact", "note": f"{name} {c.phone_number}".strip()})
    return out


_LABELS = {"photo": "фото", "document": "документ", "voice": "голосовое сообщение"}


def _thread(msg: Message) -> tuple[str, str, int | None]:
    """(kind, thread key, channel post id) for a message."""
    chat = msg.chat
    if chat.type == "private":
        return "message", f"chat:{chat.id}", None
    root = msg.reply_to_message
    if msg.is_topic_message and msg.message_thread_id:
        return "message", f"chat:{chat.id}:topic:{msg.message_thread_id}", None
    if msg.message_thread_id or (root is not None and root.is_automatic_forward):
        thread = msg.message_thread_id or (root.message_id if root is not None else None)
        post_id = None
        if root is not None and root.is_automatic_forward and root.forward_origin is not None:
            post_id = getattr(root.forward_origin, "message_id", None)
        return "comment", f"chat:{chat.id}:post:{thread}", post_id
    user = msg.from_user.id if msg.from_user else 0
    return "message", f"chat:{chat.id}:user:{user}", None


def _staff_or_echo(msg: Message, raw: RawEventView) -> str | None:
    if msg.is_automatic_forward:
        return "automatic forward of a channel post into its discussion group"
    sender = msg.sender_chat
    if sender is not None:
        if sender.id == msg.chat.id:
            return "written by an anonymous admin of the group"
        linked = raw.source_config.get("channel_id")
        root = msg.reply_to_message
        origin = (
            getattr(root.forward_origin, "chat", None) if root and root.forward_origin else None
        )
        if (linked is not None and sender.id == int(linked)) or (origin and origin.id == sender.id):
            return "written on behalf of the channel"
    if msg.from_user is not None and msg.from_user.is_bot:
        return "written by a bot"
    return None


def _message(msg: Message | None, raw: RawEventView, *, edit: bool) -> list[ParsedAppeal]:
    if msg is None:
        raise PayloadError("update without its message")
    reason = _staff_or_echo(msg, raw)
    if reason:
        raise IgnoredEvent(reason)
    if msg.text and (msg.text == "/start" or msg.text.startswith("/start ")):
        raise IgnoredEvent("/start: the customer opened the bot; their question comes next")
    attachments = _attachments(msg, raw.source)
    text = msg.text or msg.caption or ""
    if not text and not attachments:
        raise IgnoredEvent("service message without text or content")
    if not text:
        text = " ".join(f"[{_LABELS.get(a['type'], a['type'])}]" for a in attachments)
    kind, thread_key, post_id = _thread(msg)
    chat, user = msg.chat, msg.from_user
    when: datetime | None = msg.edit_date if edit else msg.date
    external = f"{chat.id}:{msg.message_id}"
    if edit:
        external += f":edit:{int(msg.edit_date.timestamp()) if msg.edit_date else raw.external_id}"
    fields: dict[str, Any] = {
        "chat_id": chat.id,
        "chat_type": str(chat.type),
        "message_id": msg.message_id,
    }
    if chat.title:
        fields["chat_title"] = chat.title
    if msg.message_thread_id:
        fields["message_thread_id"] = msg.message_thread_id
    if msg.is_topic_message:
        fields["is_topic_message"] = True
    if post_id is not None:
        fields["channel_post_id"] = post_id
    if user is not None and user.username:
        fields["username"] = user.username
    if chat.username and chat.type != "private":
        fields["url"] = f"https://t.me/{chat.username}/{msg.message_id}"
    if msg.reply_to_message is not None and not msg.reply_to_message.is_automatic_forward:
        fields["reply_to_text"] = msg.reply_to_message.text or msg.reply_to_message.caption or ""
    author = Author(
        name=user.full_name if user else (msg.sender_chat.title if msg.sender_chat else None),
        platform_id=str(user.id) if user else str(msg.sender_chat.id) if msg.sender_chat else None,
    )
    if msg.contact is not None and user is not None and msg.contact.user_id == user.id:
        author.phone = msg.contact.phone_number  # the customer shared their own number
    return [
        ParsedAppeal(
            kind=kind,
            external_id=external,
            thread_key=thread_key,
            text=text,
            author=author,
            attachments=attachments,
            fields=fields,
            received_at=when,
            is_edit=edit,
        )
    ]


def message(update: Update, raw: RawEventView) -> list[ParsedAppeal]:
    return _message(update.message, raw, edit=False)


def edited_message(update: Update, raw: RawEventView) -> list[ParsedAppeal]:
    return _message(update.edited_message, raw, edit=True)


def channel_post(update: Update, raw: RawEventView) -> list[ParsedAppeal]:
    raise IgnoredEvent("a post of the channel itself; comments arrive from its discussion group")


EVENT_HANDLERS: dict[str, Handler] = {
    "message": message,
    "edited_message": edited_message,
    "channel_post": channel_post,
    "edited_channel_post": channel_post,
}


def update_kind(data: Obj) -> str:
    kinds = [k for k in data.data if k != "update_id"]
    if not kinds:
        raise PayloadError("update carries nothing but update_id")
    return kinds[0]


def parse_event(raw: RawEventView) -> list[ParsedAppeal]:
    data = Obj.from_json(raw.body)
    data.req_int("update_id")
    kind = update_kind(data)
    handler = EVENT_HANDLERS.get(kind)
    if handler is None:
        raise UnsupportedEvent(f"Telegram update kind {kind!r} is not handled")
    try:
        update = Update.de_json(dict(data.data), None)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise PayloadError(
            f"{kind}: not a valid Telegram update ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        return handler(update, raw)
    except (TypeError, AttributeError, ValueError) as exc:
        # PTB builds objects without checking inner types ("chat": {"type": 5}, "photo": [1]);
        # the handler then trips over them. A malformed update, not a bug to retry.
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(
            f"{kind}: malformed Telegram update ({type(exc).__name__}: {exc})"
        ) from exc
