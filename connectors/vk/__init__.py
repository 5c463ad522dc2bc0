"""VK communities: Callback API (or Bots Long Poll) in, ``messages.send`` and
``wall.createComment`` out. One source per community: ``config.group_id`` (and the Callback
``confirmation`` code), secrets ``secret`` (the Callback secret key) and ``token`` (a community
token with the ``messages`` and ``wall`` rights)."""

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
from connectors.platform_http import PermanentError, split_text
from connectors.vk.client import MAX_MESSAGE_CHARS, VkClient, random_ids
from connectors.vk.parse import EVENT_HANDLERS, parse_event

CHANNEL = "vk"
OK_BODY = b"ok"


def client_for(source: SourceConfig) -> VkClient:
    cfg = source.config
    kwargs: dict[str, Any] = {}
    if cfg.get("api_url"):
        kwargs["base_url"] = str(cfg["api_url"])
    if cfg.get("timeout_seconds"):
        kwargs["timeout"] = float(cfg["timeout_seconds"])
    if cfg.get("rate_per_second"):
        kwargs["rate_per_second"] = float(cfg["rate_per_second"])
    return VkClient(source.secrets.get("token", ""), **kwargs)


def _group_id(source: SourceConfig) -> int | None:
    value = source.config.get("group_id")
    return int(value) if value not in (None, "") else None


class VkConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        body = json_object(request.body)
        kind = body.get("type")
        if not isinstance(kind, str) or not kind:
            raise Rejected(422, "VK callback without a 'type'")
        expected_group = _group_id(source)
        if expected_group is not None and body.get("group_id") != expected_group:
            raise Rejected(403, f"group_id {body.get('group_id')!r} is not this source's community")
        if kind == "confirmation":
            # VK often sends the handshake without the secret (research/channels.md §1.1), so
            # it is checked by group_id only; it reveals nothing but the confirmation code.
            code = source.config.get("confirmation")
            if not code:
                raise Rejected(404, "no confirmation code configured for this VK source")
            return Verified(
                external_id=None,
                event_type=kind,
                store=False,
                response_body=str(code).encode(),
                response_media_type="text/plain",
            )
        secret = source.secrets.get("secret")
        if not secret:
            # An empty secret verifies against an empty key, which anyone can forge.
            raise Rejected(403, "no VK secret key configured for this source (secret 'secret')")
        given = body.get("secret")
        check_secret(secret, given if isinstance(given, str) else None, "VK secret")
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise Rejected(422, "VK callback without an 'event_id'")
        # VK re-sends until it reads "ok"; a repeat has the same event_id and is stored once.
        return Verified(
            external_id=event_id,
            event_type=kind[:64],
            response_body=OK_BODY,
            response_media_type="text/plain",
        )

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return parse_event(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        """A message reply goes to the dialogue, quoting the customer's message; a wall comment
        reply goes under the post as the community, in the customer's comment thread."""
        fields = reply.fields
        with client_for(source) as client:
            if fields.get("peer_id") is not None:
                chunks = split_text(reply.text, MAX_MESSAGE_CHARS)
                ids = random_ids(reply.reply_id, len(chunks))
                cmid = fields.get("conversation_message_id")
                sent = [
                    client.send_message(
                        peer_id=int(fields["peer_id"]),
                        text=chunk,
                        random_id=rid,
                        reply_to_cmid=int(cmid) if cmid is not None and i == 0 else None,
                    )
                    for i, (chunk, rid) in enumerate(zip(chunks, ids, strict=True))
                ]
                return SentReply(
                    platform_message_id=str(sent[0]), detail=f"peer {fields['peer_id']}"
                )
            if fields.get("object") == "wall":
                group_id = int(fields.get("group_id") or _group_id(source) or 0)
                comment = fields.get("comment_id") or reply.in_reply_to
                comment_id = client.create_comment(
                    owner_id=int(fields["owner_id"]),
                    post_id=int(fields["object_id"]),
                    text=reply.text,
                    from_group=group_id,
                    reply_to_comment=int(comment) if comment is not None else None,
                    guid=f"clienthub-{reply.reply_id}",
                )
                return SentReply(
                    platform_message_id=str(comment_id),
                    detail=f"wall{fields['owner_id']}_{fields['object_id']}",
                )
        raise PermanentError(
            CHANNEL,
            f"cannot reply to a VK {fields.get('object', 'event')!r} comment with a community "
            "token: photos/video/board/market.createComment need an admin's user token",
        )


connector = VkConnector()
