"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from connectors.telegram import files as telegram_files
from hub import telephony_http
from hub.bitrix24 import app_events as b24_app_events
from hub.bitrix24 import http as b24_http
from hub.bitrix24 import placement as b24_placement
from hub.bitrix24 import sso as b24_sso
from hub.bitrix24.factory import portal_mode
from hub.bitrix24.sandbox import sandbox_from_settings
from hub.db import get_engine
from hub.http import api, hooks, ops, reaction
from hub.http import files as stored_files
from hub.http.security import install_security_headers
from hub.ingest import IngestWriter
from hub.settings import Settings, get_settings
from hub.storage.sources import SourceCache
from hub.ui import install_ui


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or get_engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await app.state.ingest.drain()

    app = FastAPI(title="ClientHub", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingest = IngestWriter(engine, batch_max=settings.ingest_batch_max)
    app.state.sources = SourceCache(engine)
    ops.register_collectors(engine)
    app.include_router(ops.router)
    app.include_router(hooks.router)
    app.include_router(api.router)
    app.include_router(telegram_files.router)
    app.include_router(stored_files.router)
    install_ui(app)  # admin UI under /ui, static files under /static
    app.include_router(b24_http.router)
    app.include_router(b24_app_events.router)
    app.include_router(b24_placement.router)
    app.include_router(b24_sso.router)  # the left-menu item: sign-in from the portal
    app.include_router(telephony_http.router)
    app.include_router(reaction.router)
    reaction.register_collector(engine)
    install_security_headers(app, settings)
    if portal_mode(settings) == "sandbox":
        # No portal configured: deliver into the built-in sandbox, served by this same process.
        app.mount("/sandbox", sandbox_from_settings(settings))
    return app
