"""Which form field is what: the phone, the e-mail, the city, the store, the topic choice.

Field names differ from site to site, so the usual names (Russian and English, any case) are
recognised, and a source maps its own: ``config.fields = {"phone": "tel2", "city": "gorod"}``.
A mapped city, region, store or topic choice lands in the appeal's fields under the canonical
key (``city``, ``region``, ``store``, ``form``), which is what the routing rules read
(``region_fields: city``, ``fields: {form: vacancy}``). Everything else is kept under its own
name, except ClientHub's own anti-spam fields and secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Author
from connectors.common import pick

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
        "textarea",  # Tilda's default name for a text area
        "сообщение",
        "текст",
        "вопрос",
        "комментарий",
        "обращение",
    ],
    "city": ["city", "town", "город"],
    "region": ["region", "регион", "область"],
    "store": ["store", "shop", "store_id", "магазин"],
    "form": ["form", "topic", "тема", "тема обращения"],
}
AUTHOR_ROLES = ("name", "phone", "email")
CANONICAL_ROLES = ("city", "region", "store", "form")
# ClientHub's anti-spam fields (see guards.py): checked in verify, never part of an appeal.
SERVICE_FIELDS = ("_hp", "_elapsed_ms")


def names_for(config: Mapping[str, Any], role: str) -> list[str]:
    custom = (config.get("fields") or {}).get(role)
    given = [custom] if isinstance(custom, str) and custom else list(custom or [])
    return given + DEFAULT_NAMES[role]


def has_contact_or_text(values: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    return any(pick(values, names_for(config, r))[1] for r in ("text", "phone", "email"))


def _flat(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value).strip()


@dataclass
class Mapped:
    author: Author
    text: str
    fields: dict[str, Any] = field(default_factory=dict)


def map_fields(
    values: Mapping[str, Any], config: Mapping[str, Any], *, drop: tuple[str, ...] = ()
) -> Mapped:
    """Split a submission into the author, the message and the remaining fields."""
    used: set[str] = set()
    found: dict[str, str] = {}
    for role in (*AUTHOR_ROLES, "text", *CANONICAL_ROLES):
        key, value = pick(values, names_for(config, role))
        if key is not None:
            used.add(key)
            found[role] = _flat(value)
    hidden = {n.lower() for n in (*SERVICE_FIELDS, *drop, str(config.get("honeypot_field", "")))}
    extra = {
        k: v
        for k, v in values.items()
        if k not in used and k.lower() not in hidden and k != "_files"
    }
    for role in CANONICAL_ROLES:
        if role in found:
            extra[role] = found[role]
    author = Author(name=found.get("name"), phone=found.get("phone"), email=found.get("email"))
    return Mapped(author=author, text=found.get("text", ""), fields=extra)
