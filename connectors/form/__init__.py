"""Site forms: JSON, urlencoded or multipart submissions mapped onto an appeal.

``form`` is the generic receiver (``/hooks/form/{source}``); ``tilda`` (``connectors.form.tilda``)
speaks Tilda's webhook dialect. What a source can ask for, in ``config``:
- ``fields``: which field is the phone, e-mail, name, text, city, region, store or topic choice
  (``connectors.form.fields``);
- ``honeypot_field`` (default ``_hp``), ``min_fill_seconds`` (default 3, read from
  ``_elapsed_ms``), ``require_fill_time``; ``rate_limit_per_minute`` / ``rate_limit_burst`` per
  client address (off by default);
- secrets: ``token`` (``X-ClientHub-Token`` header or ``?token=``) and/or ``hmac_secret`` (the
  signed variant: ``X-Signature: sha256=…`` over ``"<X-Timestamp>." + body``).
Uploaded files stay in the raw event and are linked from the appeal (``connectors.form.uploads``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    InboundRequest,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SourceConfig,
    Verified,
)
from connectors.common import check_secret, form_fields, pick
from connectors.form import guards, uploads
from connectors.form.fields import has_contact_or_text, map_fields

CHANNEL = "form"
ID_FIELDS = ["tranid", "submission_id", "request_id", "id"]
rate_limiter = guards.IpRateLimit()


def decode(body: bytes, content_type_header: str | None) -> dict[str, Any]:
    header = content_type_header or ""
    return form_fields(body, header.split(";")[0].strip().lower(), header)


def check_content(values: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """The anti-spam checks and "is there anything to act on", shared with Tilda."""
    guards.check_honeypot(values, config)
    guards.check_fill_time(values, config)
    if not has_contact_or_text(values, config):
        listed = ", ".join(sorted(values)) or "none"
        raise Rejected(422, f"the form has no message, phone or e-mail field (fields: {listed})")


def body_external_id(body: bytes) -> str:
    # No id from the site: an identical body on the same (UTC) day is taken as its retry.
    return f"sha256:{hashlib.sha256(body).hexdigest()}:{datetime.now(UTC):%Y%m%d}"


def parse_submission(
    event: RawEventView, values: Mapping[str, Any], *, drop: tuple[str, ...] = ()
) -> ParsedAppeal:
    mapped = map_fields(values, event.source_config, drop=drop)
    return ParsedAppeal(
        kind="form",
        external_id=event.external_id,
        thread_key=f"form:{event.external_id or event.id}",
        text=mapped.text,
        author=mapped.author,
        attachments=uploads.attachments(event.id, uploads.uploads(event.body, event.content_type)),
        fields=mapped.fields,
    )


class FormConnector:
    channel = CHANNEL

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        check_secret(
            source.secrets.get("token"),
            request.headers.get("x-clienthub-token") or request.query.get("token"),
            "form token (X-ClientHub-Token header or ?token=)",
        )
        if source.secrets.get("hmac_secret"):
            guards.check_signature(
                request,
                source.secrets["hmac_secret"],
                tolerance=float(source.config.get("signature_tolerance_seconds", 300)),
            )
        guards.check_rate(rate_limiter, request, f"{source.channel}/{source.source}", source.config)
        values = form_fields(
            request.body, request.content_type, request.headers.get("content-type", "")
        )
        check_content(values, source.config)
        return Verified(external_id=self._external_id(request, values), event_type="form")

    @staticmethod
    def _external_id(request: InboundRequest, values: dict[str, Any]) -> str:
        key = request.headers.get("idempotency-key")
        if key:
            return f"key:{key[:200]}"
        _, given = pick(values, ID_FIELDS)
        if given:
            return f"id:{str(given)[:200]}"
        return body_external_id(request.body)

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        return [parse_submission(event, decode(event.body, event.content_type))]


connector = FormConnector()
