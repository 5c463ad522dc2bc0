"""Faults around a platform fake, at the ASGI level: an answer that comes too late (after the
fake acted), an answer replaced after the fake acted, or an answer before the fake sees the
request. Used by the ambiguous-write tests (tests/connectors/test_reply_writes.py,
tests/e2e/test_ambiguous_reply_e2e.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Faults:
    """An ASGI wrapper: for requests whose path contains ``match`` it can answer *late* (after
    the wrapped fake handled the request), replace the fake's answer *after* it handled the
    request, or answer *before* the fake sees it. Counts the requests it saw."""

    def __init__(self, app: Any, match: str) -> None:
        self.app, self.match = app, match
        self.plan: list[tuple[str, Any]] = []  # ("late", seconds) | ("after"/"before", response)
        self.seen = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.match not in scope["path"]:
            return await self.app(scope, receive, send)
        self.seen += 1
        if not self.plan:
            return await self.app(scope, receive, send)
        kind, arg = self.plan.pop(0)
        if kind == "before":
            return await answer(send, *arg)
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)

        await self.app(scope, receive, hold)  # the fake acts on the request
        if kind == "after":
            return await answer(send, *arg)
        await asyncio.sleep(arg)  # "late": the client has given up by now
        for message in held:
            await send(message)


async def answer(send: Any, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})
