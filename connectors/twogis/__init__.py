"""2GIS reviews. There is no public reviews API (research/channels.md §4), so reviews come in two
ways, both into the channel ``twogis`` with one source per branch (its 2GIS branch id, the id in
``stores.csv``, so routing knows the store and region):
- the UNOFFICIAL business-cabinet API, polled when ``CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API``
  is on and the source has secrets ``login``/``password`` (``connectors.twogis.poller``); staff
  answers are posted there as the official answer;
- 2GIS's "new review" e-mails, read from a mailbox by the e-mail channel (always works).
Nothing is pushed by 2GIS, so the webhook refuses everything.
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
from connectors.twogis.client import TwoGisClient
from connectors.twogis.parse import EVENT_HANDLERS, parse_event
from hub.settings import get_settings

CHANNEL = "twogis"


def client_for(source: SourceConfig) -> TwoGisClient:
    cfg = source.config
    kwargs: dict[str, Any] = {}
    if cfg.get("api_url"):
        kwargs["base_url"] = str(cfg["api_url"])
    if cfg.get("web_api_key"):
        kwargs["web_api_key"] = str(cfg["web_api_key"])
    if cfg.get("timeout_seconds"):
        kwargs["timeout"] = float(cfg["timeout_seconds"])
    if cfg.get("rate_per_second"):
        kwargs["rate_per_second"] = float(cfg["rate_per_second"])
    return TwoGisClient(
        login=source.secrets.get("login", ""), password=source.secrets.get("password", ""), **kwargs
    )


class TwoGisConnector:
    channel = CHANNEL
    event_types = tuple(EVENT_HANDLERS)

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        raise Rejected(404, "2GIS does not push reviews: they are polled or read from e-mail")

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return parse_event(event)

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply:
        """Post the official answer; an identical official answer already there counts as sent
        (2GIS has no idempotency key, so a retried job checks before posting)."""
        if not get_settings().twogis_unofficial_cabinet_api:
            raise PermanentError(
                CHANNEL,
                "answering needs the unofficial cabinet API "
                "(CLIENTHUB_TWOGIS_UNOFFICIAL_CABINET_API=true); or answer in the 2GIS cabinet",
            )
        review_id = str(reply.fields.get("review_id") or "")
        if not review_id:
            raise PermanentError(CHANNEL, "the appeal has no review_id to answer")
        with client_for(source) as client:
            for c in client.comments(review_id):
                if (
                    c.get("isOfficialAnswer")
                    and str(c.get("text", "")).strip() == reply.text.strip()
                ):
                    return SentReply(platform_message_id=str(c.get("id")), detail="already there")
            result = client.post_answer(review_id, reply.text)
        return SentReply(
            platform_message_id=str(result["id"]) if result.get("id") else None,
            detail=f"official answer to review {review_id}",
        )


connector = TwoGisConnector()
