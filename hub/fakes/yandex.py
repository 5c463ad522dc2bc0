"""A fake Yandex Business cabinet (the unofficial endpoints in connectors/yandex/client.py): the
reviews list by page with the session cookies, and the business answer checked against the CSRF
tokens the list handed out. Tests add, edit and remove reviews, expire the session (401, 488 or a
redirect to Passport) and inject 429s and 500s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

PAGE = 20


@dataclass
class FakeYandex:
    session_id: str = "3:1700000000.5.0.1700000000000:abc:1.1|2.3"
    session_id2: str = "3:1700000000.5.0.1700000000000:def:2.2"
    orgs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)
    expired: str | None = None  # None, "401", "488" or "redirect"
    calls: int = 0
    fail_calls: dict[int, int] = field(default_factory=dict)
    csrf: str = "list-csrf-1"

    def __post_init__(self) -> None:
        self.app = self._build()

    def add_review(self, org: str, rid: str, *, rating: int, text: str, created: int,
                   author: str = "Покупатель") -> dict[str, Any]:  # fmt: skip
        item = {
            "id": rid,
            "lang": "ru",
            "author": {
                "privacy": "NAME_ONLY",
                "user": author,
                "uid": 1000 + len(rid),
                "avatar": "",
            },
            "time_created": created,
            "snippet": text[:100],
            "full_text": text,
            "rating": rating,
            "cmnt_entity_id": f"e{rid}",
            "comments_count": 0,
            "cmnt_official_token": f"off{rid}",
            "public_rating": True,
            "business_answer_csrf_token": f"answer-csrf-{rid}",
            "owner_comment": None,
            "photos": [],
        }
        reviews = self.orgs.setdefault(org, [])
        reviews.append(item)
        reviews.sort(key=lambda r: (r["time_created"], r["id"]), reverse=True)
        return item

    def find(self, rid: str) -> dict[str, Any]:
        return next(r for rs in self.orgs.values() for r in rs if r["id"] == rid)

    def edit(self, rid: str, *, text: str | None = None, rating: int | None = None) -> None:
        r = self.find(rid)
        if text is not None:
            r.update(full_text=text, snippet=text[:100])
        if rating is not None:
            r["rating"] = rating

    def remove(self, rid: str) -> None:
        for reviews in self.orgs.values():
            reviews[:] = [r for r in reviews if r["id"] != rid]

    def _session(self, request: Request) -> Response | None:
        if self.expired == "redirect":
            return RedirectResponse("https://passport.yandex.ru/auth?retpath=sprav", 302)
        if self.expired:
            return JSONResponse({"error": "session"}, status_code=int(self.expired))
        c = request.cookies
        if c.get("Session_id") != self.session_id or c.get("sessionid2") != self.session_id2:
            return JSONResponse({"error": "no session"}, status_code=401)
        return None

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/sprav/api/{org}/reviews")
        async def reviews(org: str, request: Request) -> Response:
            self.calls += 1
            failure = self.fail_calls.pop(self.calls, None)
            if failure == 429:
                return JSONResponse(
                    {"error": "rate"}, status_code=429, headers={"Retry-After": "1"}
                )
            if failure:
                return JSONResponse({"error": "internal"}, status_code=failure)
            refused = self._session(request)
            if refused is not None:
                return refused
            page = int(request.query_params.get("page", 1))
            items = self.orgs.get(org, [])
            chunk = items[(page - 1) * PAGE : page * PAGE]
            return JSONResponse(
                {
                    "page": page,
                    "currentState": {"filters": {"ranking": request.query_params.get("ranking")}},
                    "list": {
                        "pager": {"limit": PAGE, "offset": (page - 1) * PAGE, "total": len(items)},
                        "items": chunk,
                        "csrf_token": self.csrf,
                    },
                }
            )

        @app.post("/sprav/api/ugcpub/business-answer")
        async def answer(request: Request) -> Response:
            refused = self._session(request)
            if refused is not None:
                return refused
            body = await request.json()
            try:
                review = self.find(str(body.get("reviewId")))
            except StopIteration:
                return JSONResponse({"error": "no review"}, status_code=404)
            if (
                request.headers.get("x-csrf-token") != self.csrf
                or body.get("reviewsCsrfToken") != self.csrf
                or body.get("answerCsrfToken") != review["business_answer_csrf_token"]
            ):
                return JSONResponse({"error": "csrf"}, status_code=400)
            review["owner_comment"] = {"time_created": 1718000000, "text": body["text"]}
            self.answers.append({"reviewId": review["id"], "text": body["text"]})
            return PlainTextResponse("OK")

        return app
