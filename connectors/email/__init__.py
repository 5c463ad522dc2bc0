"""E-mail: each mailbox is a source of the ``email`` channel, read over IMAP by the scheduler
(``connectors.email.poller``) and answered over SMTP (``connectors.email.smtp``).

``parse`` (table ``EVENT_HANDLERS``) turns a stored message into an appeal of kind ``email``:
the plain text without quoted history, the sender, the attachments (links into the file store),
and a thread key that follows In-Reply-To/References and the ``[#…]`` subject tag, so a reply in
the same conversation goes to the same deal. Auto-replies, bounces and bulk mail are kept as
ignored raw events with the reason, never turned into appeals. Nothing is pushed over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import (
    Author,
    IgnoredEvent,
    InboundRequest,
    OutgoingReply,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SentReply,
    SourceConfig,
    UnsupportedEvent,
    Verified,
)
from connectors.email import message as mail
from connectors.email import smtp
from connectors.email.notifications import parse_notification_event
from connectors.email.quotes import strip_quoted

CHANNEL = "email"
Handler = Callable[[RawEventView], list[ParsedAppeal]]


def parse_message(raw: RawEventView) -> list[ParsedAppeal]:
    msg = mail.read(raw.body)
    reason = mail.auto_reason(msg)
    if reason:
        raise IgnoredEvent(f"not written by a person: {reason}")
    name, address = mail.sender(msg)
    mid = mail.message_id(msg)
    fields: dict[str, object] = {
        "subject": str(msg.get("Subject", "") or ""),
        "from": address,
        "mailbox": raw.source,
        "message_id": mid,
        "in_reply_to": mail.in_reply_to(msg),
        "references": mail.references(msg),
    }
    return [
        ParsedAppeal(
            kind="email",
            external_id=raw.external_id,
            thread_key=mail.thread_key(msg),
            text=strip_quoted(mail.body_text(msg)),
            author=Author(name=name, email=address),
            attachments=mail.attachments(msg),
            fields={k: v for k, v in fields.items() if v not in (None, "", [])},
            received_at=mail.sent_at(msg),
        )
    ]


EVENT_HANDLERS: dict[str, Handler] = {
    "message": parse_message,
    "notification_email": parse_notification_event,
}


class EmailConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        raise Rejected(404, "e-mail is read from the mailbox over IMAP, not posted here")

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        handler = EVENT_HANDLERS.get(event.event_type or "")
        if handler is None:
            raise UnsupportedEvent(f"e-mail event {event.event_type!r} is not handled")
        return handler(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        return smtp.send_reply(reply, source)


connector = EmailConnector()
