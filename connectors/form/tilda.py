"""Tilda's form webhook (help-ru.tilda.cc/formsscript), at ``/hooks/tilda/{source}``.

- Tilda posts form-urlencoded (JSON for marketplace integrations) with the form's own field
  names plus ``tranid`` (the submission id: our de-dup key) and ``formid``.
- On connecting a URL Tilda sends ``test=test`` and wants 200: answered ``ok``, nothing stored.
- It waits 5 s and retries twice a minute apart; the FAQ says anything but ``ok`` within 7 s
  reads as "Webhook URL not available", so every accepted request is answered ``ok``.
- Authentication: the webhook's API key, whose name and value are set in Tilda and sent as a
  header or a POST field (secret ``api_key``; ``config.api_key_name``, default ``X-API-Key``),
  or an unguessable ``?token=`` in the URL (secret ``token``). Tilda has no HMAC.
"""

from __future__ import annotations

from typing import Any

from connectors.base import (
    InboundRequest,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SourceConfig,
    Verified,
)
from connectors.common import check_secret, form_fields
from connectors.form import (
    body_external_id,
    check_content,
    decode,
    guards,
    parse_submission,
    rate_limiter,
)

CHANNEL = "tilda"
DEFAULT_KEY_NAME = "X-API-Key"
OK = b"ok"
# "Send cookies" in Tilda adds the visitor's cookies: not the customer's message.
NOT_FIELDS = ("COOKIES",)


def _key_name(source: SourceConfig) -> str:
    return str(source.config.get("api_key_name") or DEFAULT_KEY_NAME)


class TildaConnector:
    channel = CHANNEL

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        values = form_fields(
            request.body, request.content_type, request.headers.get("content-type", "")
        )
        if values == {"test": "test"}:
            return Verified(
                external_id=None, store=False, response_body=OK, response_media_type="text/plain"
            )
        self._authenticate(request, source, values)
        guards.check_rate(rate_limiter, request, f"{source.channel}/{source.source}", source.config)
        check_content(values, source.config)
        tranid = str(values.get("tranid") or "").strip()
        return Verified(
            external_id=f"tranid:{tranid[:200]}" if tranid else body_external_id(request.body),
            event_type="form",
            response_body=OK,
            response_media_type="text/plain",
        )

    @staticmethod
    def _authenticate(
        request: InboundRequest, source: SourceConfig, values: dict[str, Any]
    ) -> None:
        api_key, token = source.secrets.get("api_key"), source.secrets.get("token")
        if not api_key and not token:
            # An empty secret would verify against an empty key, which anyone can forge.
            raise Rejected(403, "this Tilda source has no api_key or token secret configured")
        name = _key_name(source)
        given_key = request.headers.get(name.lower()) or values.get(name)
        if api_key and given_key:
            check_secret(api_key, str(given_key), f"Tilda API key ({name})")
            return
        if token and request.query.get("token"):
            check_secret(token, request.query.get("token"), "URL token (?token=)")
            return
        raise Rejected(403, f"Tilda API key ({name} header or field) or ?token= is missing")

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        values = decode(event.body, event.content_type)
        name = str(event.source_config.get("api_key_name") or DEFAULT_KEY_NAME)
        return [parse_submission(event, values, drop=(*NOT_FIELDS, name))]


connector = TildaConnector()
