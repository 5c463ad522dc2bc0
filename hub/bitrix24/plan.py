"""What an appeal becomes in the CRM: its outbox keys, the contact, the deal or lead, the comment.

Pure functions of the appeal. Keys name things once and for all: a contact per person (phone,
else e-mail, else platform id), a deal per thread, a comment per message. ``originId`` carries the
same identity into Bitrix24, so that a lookup can find what an interrupted attempt created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from hub.models import Appeal

ORIGINATOR = "clienthub"
CHANNEL_NAMES = {
    "cti": "Звонок",
    "vk": "ВК",
    "telegram": "Telegram",
    "ok": "ОК",
    "twogis": "2ГИС",
    "yandex": "Яндекс Карты",
    "form": "Сайт",
    "tilda": "Сайт",
    "email": "E-mail",
    "mango": "Звонок",
    "uis": "Звонок",
    "zammad_cti": "Звонок",
}
KIND_NAMES = {
    "message": "сообщение",
    "comment": "комментарий",
    "review": "отзыв",
    "call": "звонок",
    "form": "заявка",
    "email": "письмо",
}
# Bitrix24's standard SOURCE statuses (crm.status.list ENTITY_ID=SOURCE).
SOURCE_BY_KIND = {"call": "CALL", "email": "EMAIL", "form": "WEBFORM"}
IM_TYPES = {"vk": "VK", "telegram": "TELEGRAM"}
ENTITY_TYPE_IDS = {"lead": 1, "deal": 2, "contact": 3}


@dataclass(frozen=True)
class Identity:
    """How the person is recognised: ``key`` is the outbox key and the contact's ``originId``."""

    key: str
    comm_type: str | None  # PHONE / EMAIL for crm.duplicate.findbycomm; None: originId only
    value: str


def normalize_phone(raw: str | None) -> str | None:
    """E.164: Bitrix24 treats differently formatted numbers as different (docs: findbycomm)."""
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity(appeal: Appeal) -> Identity | None:
    phone = normalize_phone(appeal.author_phone)
    if phone:
        return Identity(f"phone:{phone}", "PHONE", phone)
    if appeal.author_email and "@" in appeal.author_email:
        email = appeal.author_email.strip().lower()
        return Identity(f"email:{email}", "EMAIL", email)
    if appeal.author_platform_id:
        return Identity(f"im:{appeal.channel}:{appeal.author_platform_id}", None, "")
    return None


def entity_of(appeal: Appeal) -> str:
    entity = str((appeal.target or {}).get("entity") or "deal").lower()
    return entity if entity in ("deal", "lead") else "deal"


def thread_key(appeal: Appeal) -> str:
    """One deal per dialogue or comment thread; an appeal without a thread is its own."""
    if appeal.thread_key:
        return f"thread:{appeal.channel}:{appeal.source}:{appeal.thread_key}"
    return f"appeal:{appeal.id}"


def comment_key(appeal: Appeal) -> str:
    return f"appeal:{appeal.id}"


def appeal_link(public_url: str, appeal_id: int) -> str:
    return f"{public_url.rstrip('/')}/appeals/{appeal_id}"


def marker(appeal_id: int) -> str:
    """Written into every comment; a lookup after an interrupted attempt searches for it."""
    return f"ClientHub #{appeal_id}"


def has_marker(text: str, appeal_id: int) -> bool:
    return re.search(rf"{re.escape(marker(appeal_id))}(?!\d)", text or "") is not None


def title(appeal: Appeal) -> str:
    """«ВК: комментарий — Казань, вакансия»."""
    channel = CHANNEL_NAMES.get(appeal.channel, appeal.channel)
    kind = KIND_NAMES.get(appeal.kind, appeal.kind)
    labels = appeal.labels or {}
    where = labels.get("city") or labels.get("region") or appeal.region
    what = labels.get("topic") or appeal.topic
    tail = ", ".join(x for x in (where, what) if x)
    return f"{channel}: {kind}" + (f" — {tail}" if tail else "")


def source_id(appeal: Appeal) -> str:
    explicit = (appeal.target or {}).get("source")
    return str(explicit) if explicit else SOURCE_BY_KIND.get(appeal.kind, "OTHER")


def contact_fields(appeal: Appeal, who: Identity) -> dict[str, Any]:
    first, _, last = (appeal.author_name or "").strip().partition(" ")
    fm: list[dict[str, str]] = []
    phone = normalize_phone(appeal.author_phone)
    if phone:
        fm.append({"typeId": "PHONE", "valueType": "MOBILE", "value": phone})
    if appeal.author_email and "@" in appeal.author_email:
        fm.append({"typeId": "EMAIL", "valueType": "WORK", "value": appeal.author_email.strip()})
    if appeal.author_platform_id:
        fm.append(
            {
                "typeId": "IM",
                "valueType": IM_TYPES.get(appeal.channel, "OTHER"),
                "value": str(appeal.author_platform_id),
            }
        )
    fields: dict[str, Any] = {
        "name": first or "Клиент",
        "sourceId": source_id(appeal),
        "sourceDescription": CHANNEL_NAMES.get(appeal.channel, appeal.channel),
        "originatorId": ORIGINATOR,
        "originId": who.key,
        "fm": fm,
    }
    if last:
        fields["lastName"] = last
    if appeal.bitrix_user_id:
        fields["assignedById"] = appeal.bitrix_user_id
    return fields


def item_fields(appeal: Appeal, *, origin_id: str, contact: Any, link: str) -> dict[str, Any]:
    """A deal or lead in the routed pipeline and stage, with the routed responsible."""
    target = appeal.target or {}
    fields: dict[str, Any] = {
        "title": title(appeal),
        "sourceId": source_id(appeal),
        "sourceDescription": f"ClientHub: {link}",
        "originatorId": ORIGINATOR,
        "originId": origin_id,
    }
    stage = target.get("stage")
    if entity_of(appeal) == "deal":
        pipeline = int(target.get("pipeline") or 0)
        fields["categoryId"] = pipeline
        if stage:
            prefix = f"C{pipeline}:"
            fields["stageId"] = (
                stage if not pipeline or stage.startswith(prefix) else prefix + stage
            )
    elif stage:
        fields["stageId"] = stage
    if appeal.bitrix_user_id:
        fields["assignedById"] = appeal.bitrix_user_id
    if contact is not None:
        fields["contactId"] = contact
    return fields


def comment_text(appeal: Appeal, link: str) -> str:
    """The message, its attachments as links, who wrote, and the way back to ClientHub."""
    parts = [appeal.text.strip() or "(без текста)"]
    files = []
    base = link.split("/appeals/", 1)[0]
    for a in appeal.attachments or []:
        url = a.get("url") or a.get("link")
        if url and url.startswith("/"):
            url = base + url  # ClientHub's own file routes: the portal needs an absolute link
        if url:
            files.append(f"[URL={url}]{a.get('name') or a.get('type') or url}[/URL]")
    if files:
        parts.append("Вложения:\n" + "\n".join(files))
    author = ", ".join(
        str(x) for x in (appeal.author_name, appeal.author_phone, appeal.author_email) if x
    )
    if author:
        parts.append(f"Автор: {author}")
    if appeal.rating is not None:
        parts.append(f"Оценка: {appeal.rating}")
    review = (appeal.fields or {}).get("url") if appeal.kind == "review" else None
    if isinstance(review, str) and review.startswith(("https://", "http://")):
        # Where staff read and answer it: the platform's page (no API to answer through).
        parts.append(f"Отзыв на площадке: [URL={review}]{review}[/URL]")
    parts.append(f"[URL={link}]{marker(appeal.id or 0)}[/URL]")
    return "\n\n".join(parts)
