"""The servers under test: ClientHub's real app, or a bare FastAPI endpoint that does nothing."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/{channel}/{source}")
    async def hook(channel: str, source: str, request: Request) -> Response:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    return app


def hub_app(url: str) -> FastAPI:
    import os

    os.environ["CLIENTHUB_DATABASE_URL"] = url
    from hub import migrations
    from hub.bootstrap import ensure_defaults
    from hub.db import get_engine
    from hub.http.app import create_app
    from hub.settings import get_settings

    migrations.upgrade(url)
    ensure_defaults(get_engine(), get_settings())
    return create_app()


if __name__ == "__main__":
    from hub.runtime import tune_gc

    mode, port = sys.argv[1], int(sys.argv[2])
    app = bare_app() if mode == "bare" else hub_app(sys.argv[3])
    tune_gc()  # as `clienthub web` and `run` do, for both servers alike
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
