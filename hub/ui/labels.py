"""Human names for the codes stored on appeals (regions, topics, departments, employees), from
the rule set in force; built once per published version."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.routing.service import compiled
from hub.settings import Settings
from hub.storage import rulesets


@dataclass(frozen=True)
class Labels:
    version: int | None = None
    regions: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)
    employees: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)  # noise filter id -> its reason


_lock = threading.Lock()
_cache: dict[int, Labels] = {}


def labels(engine: Engine) -> Labels:
    with session_scope(engine, read_only=True) as s:
        version_id = rulesets.published_id(s)
        if version_id is None:
            return Labels()
        found = _cache.get(version_id)
        if found is not None:
            return found
        model = compiled(s, version_id).model
    built = Labels(
        version_id,
        {r.code: r.name for r in model.regions},
        {t.code: t.title for t in model.topics},
        {d.code: d.name for d in model.departments},
        {e.id: e.name for e in model.employees},
        {f.id: f.reason for f in model.filters},
    )
    with _lock:
        _cache.clear()
        _cache[version_id] = built
    return built


def portal_url(settings: Settings) -> str | None:
    """The Bitrix24 portal staff open deals in: the webhook's host, or the sandbox."""
    webhook = settings.b24_webhook_url.get_secret_value()
    if webhook:
        parts = urlsplit(webhook)
        return f"{parts.scheme}://{parts.netloc}"
    if settings.b24_portal_domain:
        return f"https://{settings.b24_portal_domain}"
    if settings.sandbox_enabled:
        return settings.sandbox_url.rstrip("/") or f"{settings.effective_public_url()}/sandbox"
    return None


def crm_link(settings: Settings, entity: str | None, entity_id: int | None) -> str | None:
    base = portal_url(settings)
    if not base or not entity_id:
        return None
    if _mounted_sandbox(settings):
        # The built-in portal has no CRM pages of its own: its items are shown by /ui/sandbox.
        return f"/ui/sandbox/deals/{entity_id}"
    return f"{base}/crm/{entity or 'deal'}/details/{entity_id}/"


def _mounted_sandbox(settings: Settings) -> bool:
    return (
        not settings.b24_webhook_url.get_secret_value()
        and not settings.b24_portal_domain
        and settings.sandbox_enabled
        and not settings.sandbox_url
    )
