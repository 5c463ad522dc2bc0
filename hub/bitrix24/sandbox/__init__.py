"""The sandbox portal: a local stand-in for Bitrix24 that the demo and the tests run on."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from hub.bitrix24.sandbox.app import Portal, create_sandbox_app
from hub.settings import SAMPLE_RULES_DIR, Settings

__all__ = ["Portal", "create_sandbox_app", "sandbox_from_settings"]


def sandbox_from_settings(settings: Settings, seed_dir: Path | None = SAMPLE_RULES_DIR) -> FastAPI:
    """The sandbox as `clienthub run` mounts it at /sandbox and `clienthub sandbox` serves it."""
    return create_sandbox_app(
        settings.sandbox_db,
        seed_dir=seed_dir,
        webhook_code=settings.sandbox_webhook_code,
        rate=(settings.sandbox_rate_burst, settings.sandbox_rate_per_second),
    )
