"""Site forms: generic JSON, urlencoded or multipart submissions mapped onto an appeal.

Field names differ from site to site, so the usual names (Russian and English) are recognised and
a source can map its own: ``config.fields = {"name": "...", "phone": "...", "email": "...",
"text": "..."}``. Everything else is kept in ``appeal.fields`` for routing (city, store, topic).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    Author,
    InboundRequest,
    ParsedAppeal,
    RawEventView,
    Rejected,
    SourceConfig,
    Verified,
)
from connectors.common import check_secret, form_fields, pick

CHANNEL = "form"

DEFAULT_NAMES: dict[str, list[str]] = {
    "name": ["name", "fio", "fullname", "full_name", "client_name", "имя", "фио"],
    "phone": ["phone", "tel", "telephone", "mobile", "phone_number", "телефон"],
    "email": ["email", "e-mail", "mail", "почта"],
    "text": [
        "message",
        "text",
        "comment",
        "question",
        "body",
        "сообщение",
        "текст",
        "вопрос",
        "комментарий",
        "обращение",
    ],
}
ID_FIELDS = ["tranid", "submission_id", "request_id", "id"]


def _names(source_config: dict[str, Any], what: str) -> list[str]:
    custom = (source_config.get("fields") or {}).get(what)
    return ([custom] if custom else []) + DEFAULT_NAMES[what]


class FormConnector:
    channel = CHANNEL

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified:
        check_secret(
            source.secrets.get("token"),
            request.headers.get("x-clienthub-token") or request.query.get("token"),
            "form token (X-ClientHub-Token header or ?token=)",
        )
        fields = form_fields(
            request.body, request.content_type, request.headers.get("content-type", "")
        )
        config = dict(source.config)
        has_any = any(pick(fields, _names(config, what))[1] for what in ("text", "phone", "email"))
        if not has_any:
            listed = ", ".join(sorted(fields)) or "none"
            raise Rejected(
                422, f"the form has no message, phone or e-mail field (fields: {listed})"
            )
        return Verified(external_id=self._external_id(request, fields), event_type="form")

    @staticmethod
    def _external_id(request: InboundRequest, fields: dict[str, Any]) -> str:
        key = request.headers.get("idempotency-key")
        if key:
            return f"key:{key[:200]}"
        _, given = pick(fields, ID_FIELDS)
        if given:
            return f"id:{str(given)[:200]}"
        # No id from the site: an identical body on the same (UTC) day is taken as its retry.
        digest = hashlib.sha256(request.body).hexdigest()
        return f"sha256:{digest}:{datetime.now(UTC):%Y%m%d}"

    def parse(self, event: RawEventView) -> list[ParsedAppeal]:
        content_type = (event.content_type or "").split(";")[0].strip().lower()
        fields = form_fields(event.body, content_type, event.content_type or "")
        config = dict(event.source_config)
        used: set[str] = set()

        def take(what: str) -> str | None:
            key, value = pick(fields, _names(config, what))
            if key is None:
                return None
            used.add(key)
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value).strip()

        author = Author(name=take("name"), phone=take("phone"), email=take("email"))
        text = take("text") or ""
        extra = {k: v for k, v in fields.items() if k not in used}
        return [
            ParsedAppeal(
                kind="form",
                external_id=event.external_id,
                thread_key=f"form:{event.external_id or event.id}",
                text=text,
                author=author,
                attachments=list(extra.pop("_files", [])),
                fields=extra,
            )
        ]


connector = FormConnector()
