"""Yandex Maps / Yandex Business reviews. There is no public reviews API (research/channels.md
§5); reviews come into the channel ``yandex``, one source per organisation (its permanent id, the
``yandex`` column of ``stores.csv``), in two ways:
- the UNOFFICIAL cabinet endpoints with a person's browser session (secrets ``session_id``,
  ``session_id2``, optionally ``cookie_i``), polled when ``CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API``
  is on (``connectors.yandex.poller``); staff answers are posted as the business answer. The
  session expires: the poller then raises an alert (log and poller status) every tick until a
  person pastes fresh cookies;
- Yandex's "new review" e-mails, read from a mailbox by the e-mail channel (always works).
"""

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
from connectors.platform_http import PermanentError
from connectors.yandex.client import YandexBusinessClient
from connectors.yandex.parse import EVENT_HANDLERS, parse_event
from hub.settings import get_settings

CHANNEL = "yandex"


def client_for(source: SourceConfig) -> YandexBusinessClient:
    cfg, sec = source.config, source.secrets
    kwargs: dict[str, Any] = {}
    if cfg.get("api_url"):
        kwargs["base_url"] = str(cfg["api_url"])
    if cfg.get("timeout_seconds"):
        kwargs["timeout"] = float(cfg["timeout_seconds"])
    if cfg.get("rate_per_second"):
        kwargs["rate_per_second"] = float(cfg["rate_per_second"])
    return YandexBusinessClient(
        session_id=sec.get("session_id", ""),
        session_id2=sec.get("session_id2", ""),
        cookie_i=sec.get("cookie_i", ""),
        **kwargs,
    )


def org_id(source: SourceConfig) -> str:
    return str(source.config.get("org_id") or source.source)


class YandexConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        raise Rejected(404, "Yandex does not push reviews: they are polled or read from e-mail")

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return parse_event(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        """The business answer needs fresh CSRF tokens from the list, so the review is looked up
        first (newest pages); an identical answer already there counts as sent."""
        if not get_settings().yandex_unofficial_cabinet_api:
            raise PermanentError(
                CHANNEL,
                "answering needs the unofficial cabinet API "
                "(CLIENTHUB_YANDEX_UNOFFICIAL_CABINET_API=true); or answer in Yandex Business",
            )
        review_id = str(reply.fields.get("review_id") or "")
        if not review_id:
            raise PermanentError(CHANNEL, "the appeal has no review_id to answer")
        pages = int(source.config.get("answer_search_pages", 10))
        with client_for(source) as client:
            for page in range(1, pages + 1):
                listing = client.reviews_page(org_id(source), page)
                items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
                item = next((i for i in items if str(i.get("id")) == review_id), None)
                if item is not None:
                    current = (item.get("owner_comment") or {}).get("text") or ""
                    if current.strip() == reply.text.strip():
                        return SentReply(platform_message_id=review_id, detail="already there")
                    client.answer(
                        review_id=review_id,
                        text=reply.text,
                        answer_csrf=str(item.get("business_answer_csrf_token") or ""),
                        reviews_csrf=str(listing.get("csrf_token") or ""),
                    )
                    return SentReply(platform_message_id=review_id, detail="business answer")
                if len(items) < int((listing.get("pager") or {}).get("limit") or 20):
                    break
        raise PermanentError(CHANNEL, f"review {review_id} is not in the cabinet's list")


connector = YandexConnector()
