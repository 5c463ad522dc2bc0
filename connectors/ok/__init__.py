"""OK (ok.ru) groups: chat messages through the Bot API webhook, comments under group posts by
polling (``connectors.ok.discussions``), answers through ``/graph/me/messages`` and
``discussions.addDiscussionComment``.

OK signs nothing (apiok/documentation ``graph.user.subscribe``): the webhook URL carries an
unguessable ``?token=`` (secret ``url_token``) that ``clienthub channels setup ok`` subscribes with;
optionally ``config.allowed_ips`` lists OK's networks for a proxy that sets ``X-Real-IP``.
"""

from __future__ import annotations

import ipaddress
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
from connectors.ok.client import OkClient
from connectors.ok.parse import EVENT_HANDLERS, event_type, parse_event
from connectors.payload import Obj, PayloadError
from connectors.platform_http import PermanentError

CHANNEL = "ok"
# Where OK's webhooks come from (graph.user.subscribe, 2017).
OK_NETWORKS = ["217.20.145.192/28", "217.20.151.160/28", "217.20.153.48/28"]


def client_for(source: SourceConfig) -> OkClient:
    cfg, sec = source.config, source.secrets
    kwargs: dict[str, Any] = {}
    if cfg.get("api_url"):
        kwargs["base_url"] = str(cfg["api_url"])
    if cfg.get("timeout_seconds"):
        kwargs["timeout"] = float(cfg["timeout_seconds"])
    if cfg.get("rate_per_second"):
        kwargs["rate_per_second"] = float(cfg["rate_per_second"])
    return OkClient(
        token=sec.get("token", ""),
        app_key=sec.get("app_key", ""),
        app_secret=sec.get("app_secret", ""),
        user_token=sec.get("user_token", ""),
        **kwargs,
    )


def _check_ip(request: InboundRequest, allowed: list[str]) -> None:
    given = request.headers.get("x-real-ip") or request.headers.get("x-forwarded-for", "")
    address = given.split(",")[0].strip()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise Rejected(403, "no client address to check against config.allowed_ips") from None
    if not any(ip in ipaddress.ip_network(net) for net in allowed):
        raise Rejected(403, f"{address} is not in config.allowed_ips")


class OkConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        token = source.secrets.get("url_token")
        if not token:
            raise Rejected(403, "no URL token configured for this OK source (secret 'url_token')")
        check_secret(token, request.query.get("token"), "OK webhook URL token (?token=)")
        allowed = source.config.get("allowed_ips")
        if allowed:
            _check_ip(request, list(allowed))
        body = Obj(json_object(request.body))
        try:
            kind = event_type(body)
        except PayloadError:
            kind = None  # stored anyway; parsing will say what is wrong with it
        message = body.data.get("message")
        mid = message.get("mid") if isinstance(message, dict) else None
        # OK retries a webhook that does not answer 200 within 5 s; mid identifies the message.
        return Verified(
            external_id=str(mid) if mid else None, event_type=kind[:64] if kind else None
        )

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return parse_event(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        fields = reply.fields
        with client_for(source) as client:
            if fields.get("chat_id"):
                result = client.send_message(chat_id=str(fields["chat_id"]), text=reply.text)
                mid = result.get("message_id") or result.get("mid")
                return SentReply(
                    platform_message_id=str(mid) if mid else None, detail=str(fields["chat_id"])
                )
            if fields.get("discussion_id"):
                result = client.add_comment(
                    topic_id=str(fields["discussion_id"]),
                    text=reply.text,
                    reply_to=str(fields.get("comment_id") or reply.in_reply_to or "") or None,
                )
                cid = result.get("id") if isinstance(result, dict) else result
                return SentReply(
                    platform_message_id=str(cid) if cid else None,
                    detail=f"topic {fields['discussion_id']}",
                )
        raise PermanentError(CHANNEL, "the appeal has neither chat_id nor discussion_id")


connector = OkConnector()
