"""A fake 2GIS business cabinet API (the unofficial endpoints in connectors/twogis/client.py):
login with the web client's ``x-api-key``, a branch's reviews newest first with ``limit`` and
``offsetDate`` paging, comments and the official answer. Tests edit, hide and delete reviews,
expire tokens, change the password, and inject 429s and 500s."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.twogis.client import WEB_API_KEY


def _err(status: int, message: str, **headers: str) -> JSONResponse:
    body = {"meta": {"code": status, "error": {"type": "error", "message": message}}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class FakeTwoGis:
    login: str = "owner@example.ru"
    password: str = "cabinet-pass"
    branches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)
    logins: int = 0
    review_calls: int = 0
    fail_review_calls: dict[int, int] = field(default_factory=dict)  # call number -> HTTP status
    retry_after: str = "1"
    tokens: set[str] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = self._build()

    # -- what tests do to the platform -------------------------------------------------------
    def add_review(self, branch: str, rid: str, *, rating: int, text: str, created: str,
                   author: str = "Покупатель") -> dict[str, Any]:  # fmt: skip
        item = {
            "id": rid,
            "rating": rating,
            "text": text,
            "dateCreated": created,
            "user": {"id": f"u{rid}", "name": author, "photoPreviewUrls": {}},
            "allowedActions": {"reply": True},
            "isHidden": False,
        }
        reviews = self.branches.setdefault(branch, [])
        reviews.append(item)
        reviews.sort(key=lambda r: (r["dateCreated"], r["id"]), reverse=True)
        return item

    def find(self, rid: str) -> dict[str, Any]:
        return next(r for rs in self.branches.values() for r in rs if r["id"] == rid)

    def edit(self, rid: str, *, text: str | None = None, rating: int | None = None,
             edited: str = "2024-06-10T10:00:00+03:00") -> None:  # fmt: skip
        r = self.find(rid)
        r.update({k: v for k, v in (("text", text), ("rating", rating)) if v is not None})
        r["dateEdited"] = edited

    def hide(self, rid: str, reason: str = "Нарушает правила") -> None:
        self.find(rid).update(isHidden=True, hidingReason=reason)

    def delete(self, rid: str) -> None:
        for reviews in self.branches.values():
            reviews[:] = [r for r in reviews if r["id"] != rid]

    def expire_tokens(self) -> None:
        self.tokens.clear()

    # -- the HTTP API --------------------------------------------------------------------------
    def _authorised(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/1.0/users/auth")
        async def auth(request: Request) -> JSONResponse:
            if request.headers.get("x-api-key") != WEB_API_KEY:
                return _err(403, "unknown api key")
            body = await request.json()
            self.logins += 1
            if body.get("login") != self.login or body.get("password") != self.password:
                return _err(401, "Неверный логин или пароль")
            token = f"tok{next(self._ids)}"
            self.tokens.add(token)
            return JSONResponse({"meta": {"code": 200}, "result": {"access_token": token}})

        @app.get("/api/1.0/presence/branch/{branch}/reviews")
        async def reviews(branch: str, request: Request) -> JSONResponse:
            self.review_calls += 1
            failure = self.fail_review_calls.pop(self.review_calls, None)
            if failure == 429:
                return _err(429, "Too Many Requests", **{"Retry-After": self.retry_after})
            if failure:
                return _err(failure, "Internal error")
            if not self._authorised(request):
                return _err(401, "token expired")
            q = request.query_params
            limit = int(q.get("limit", 50))
            items = self.branches.get(branch, [])
            if q.get("offsetDate"):
                items = [r for r in items if r["dateCreated"] < q["offsetDate"]]
            page = items[:limit]
            return JSONResponse(
                {"meta": {"code": 200}, "result": {"items": page, "total": len(items)}}
            )

        @app.get("/api/1.0/presence/reviews/{rid}/comments")
        async def comments(rid: str, request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _err(401, "token expired")
            items = [a for a in self.answers if a["reviewId"] == rid]
            return JSONResponse({"meta": {"code": 200}, "result": {"items": items}})

        @app.post("/api/1.0/presence/reviews/{rid}/comments")
        async def answer(rid: str, request: Request) -> JSONResponse:
            if not self._authorised(request):
                return _err(401, "token expired")
            body = await request.json()
            if body.get("catalog") != "2gis" or not body.get("text"):
                return _err(400, "catalog and text are required")
            comment = {
                "id": f"c{next(self._ids)}",
                "reviewId": rid,
                "text": body["text"],
                "isOfficialAnswer": bool(body.get("isOfficialAnswer")),
            }
            self.answers.append(comment)
            return JSONResponse({"meta": {"code": 200}, "result": comment})

        return app
