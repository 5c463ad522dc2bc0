"""Telegram bots: private chats and the comments of a channel's linked discussion group in,
``sendMessage`` with ``reply_parameters`` out. One source per bot: secrets ``token`` (from
BotFather) and ``webhook_secret`` (sent back by Telegram in ``X-Telegram-Bot-Api-Secret-Token``);
``config.channel_id`` optionally names the linked channel so its own comments are ignored."""

from __future__ import annotations

from typing import Any

from connectors.base import (
    InboundRequest,
    OutgoingReply,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SentReply,
    SourceConfig,
    Verified,
)
from connectors.common import check_secret, json_object
from connectors.platform_http import PermanentError, TransientError, split_text
from connectors.telegram.client import MAX_MESSAGE_CHARS, TelegramClient
from connectors.telegram.parse import EVENT_HANDLERS, parse_event

CHANNEL = "telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"


def client_for(source: SourceConfig) -> TelegramClient:
    cfg = source.config
    kwargs: dict[str, Any] = {}
    if cfg.get("api_url"):
        kwargs["base_url"] = str(cfg["api_url"])
    if cfg.get("timeout_seconds"):
        kwargs["timeout"] = float(cfg["timeout_seconds"])
    return TelegramClient(source.secrets.get("token", ""), **kwargs)


class TelegramConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        secret = source.secrets.get("webhook_secret")
        if not secret:
            raise Rejected(
                403,
                "no webhook secret configured for this Telegram source (secret 'webhook_secret')",
            )
        check_secret(secret, request.headers.get(SECRET_HEADER), "X-Telegram-Bot-Api-Secret-Token")
        body = json_object(request.body)
        update_id = body.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise Rejected(422, "Telegram update without an integer 'update_id'")
        kind = next((k for k in body if k != "update_id"), None)
        # update_id is unique per bot; Telegram re-delivers the same one until it gets a 2xx.
        return Verified(external_id=str(update_id), event_type=kind[:64] if kind else None)

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return parse_event(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        """Answer in the chat where the customer wrote, as a reply to their message, so that a
        comment's answer lands in the same post's comment thread."""
        fields = reply.fields
        chat_id = fields.get("chat_id")
        if chat_id is None:
            raise PermanentError(CHANNEL, "the appeal has no chat_id to answer in")
        reply_to = fields.get("message_id") or reply.in_reply_to
        topic = fields.get("message_thread_id") if fields.get("is_topic_message") else None
        chunks = split_text(reply.text, MAX_MESSAGE_CHARS)
        sent: list[dict[str, Any]] = []
        with client_for(source) as client:
            for i, chunk in enumerate(chunks):
                try:
                    sent.append(
                        client.send_message(
                            chat_id=int(chat_id),
                            text=chunk,
                            reply_to_message_id=(
                                int(reply_to) if reply_to is not None and i == 0 else None
                            ),
                            message_thread_id=int(topic) if topic else None,
                        )
                    )
                except (PermanentError, TransientError) as exc:
                    if not sent:
                        raise
                    # The customer has the first parts: sending the reply again would repeat
                    # them, so even a refusal of a later part is not a clean "not sent".
                    detail = f"{len(sent)} of {len(chunks)} parts delivered, then: {exc.detail}"
                    raise TransientError(CHANNEL, detail) from None
        return SentReply(platform_message_id=str(sent[0]["message_id"]), detail=f"chat {chat_id}")


connector = TelegramConnector()
