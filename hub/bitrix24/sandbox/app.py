"""A local HTTP server that behaves like a Bitrix24 portal for the methods ClientHub uses.

Webhook calls at ``/rest/{user}/{code}/{method}``, application calls at ``/rest/{method}`` with
``auth=``, the OAuth server at ``/oauth/token/``; ``/_sandbox/*`` lets tests and the demo break it
(faults), read every call it received, and reset it. Handlers are plain ``def``: FastAPI runs
them in its thread pool, so an injected delay never blocks other requests.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.bitrix24 import phpquery
from hub.bitrix24.sandbox import bindings, crm, notify, openlines, openlines_http, other, telephony
from hub.bitrix24.sandbox.errors import ApiError, Caller, Result
from hub.bitrix24.sandbox.faults import Faults, LeakyBucket
from hub.bitrix24.sandbox.seed import apply_seed, load_seed
from hub.bitrix24.sandbox.store import SandboxStore

METHODS = {
    **crm.METHODS,
    **other.METHODS,
    **openlines.METHODS,
    **bindings.METHODS,
    **telephony.METHODS,  # overrides other.py's simple finish/attachRecord
    **notify.METHODS,
}
APP_ONLY = other.APP_ONLY | openlines.APP_ONLY | bindings.APP_ONLY
_REF = re.compile(r"^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$")
TOKEN_TTL = 3600


class Portal:
    """The sandbox's state and behaviour, independent of HTTP (tests may use it directly)."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        seed_dir: Path | None,
        webhook_user: int = 1,
        webhook_code: str = "sandbox",
        rate: tuple[float, float] | None = (50, 2.0),
        token_ttl: int = TOKEN_TTL,
    ) -> None:
        self.store = SandboxStore(db_path)
        self.seed_dir = seed_dir
        self.webhook = (webhook_user, webhook_code)
        self.token_ttl = token_ttl
        self.faults = Faults()
        if rate:
            self.faults.bucket = LeakyBucket(*rate)
        if self.store.scalar("SELECT count(*) FROM categories") == 0:
            apply_seed(self.store, load_seed(seed_dir))
        openlines.ensure_schema(self.store)
        telephony.ensure_schema(self.store)

    def reset(self) -> None:
        self.store.reset()
        apply_seed(self.store, load_seed(self.seed_dir))
        openlines.reset(self.store)
        telephony.reset(self.store)
        notify.reset(self.store)
        rate = self.faults.bucket
        self.faults = Faults()
        self.faults.bucket = LeakyBucket(rate.burst, rate.per_second) if rate else None

    # -- auth ----------------------------------------------------------------------------------
    def webhook_caller(self, user: str, code: str) -> Caller:
        if not (user.isdigit() and int(user) == self.webhook[0]):
            raise ApiError(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        if not secrets.compare_digest(code.encode(), self.webhook[1].encode()):
            raise ApiError(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        return Caller(user_id=self.webhook[0], is_app=False)

    def token_caller(self, token: Any) -> Caller:
        if not token:
            raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT user_id, expires, revoked, client_id FROM tokens WHERE access_token = ?",
                (str(token),),
            ).fetchone()
        if row is None or row["revoked"]:
            raise ApiError(401, "invalid_token", "The access token provided is invalid.")
        if row["expires"] <= time.time():
            raise ApiError(401, "expired_token", "The access token provided has expired.")
        return Caller(user_id=int(row["user_id"]), is_app=True, client_id=str(row["client_id"]))

    def register_app(self, client_id: str, client_secret: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT OR REPLACE INTO apps VALUES (?, ?)", (client_id, client_secret))

    def issue_tokens(self, client_id: str, user_id: int = 1) -> dict[str, Any]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        expires = time.time() + self.token_ttl
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, 0)",
                (access, refresh, client_id, user_id, expires),
            )
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires": int(expires),
            "expires_in": self.token_ttl,
            "scope": "crm,user,department,telephony,task,imopenlines,imconnector,im,placement",
            "member_id": "sandbox0member0id",
            "status": "L",
            "user_id": user_id,
        }

    def refresh_tokens(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            app = self.store.conn.execute(
                "SELECT client_secret FROM apps WHERE client_id = ?",
                (str(params.get("client_id")),),
            ).fetchone()
            if app is None or not secrets.compare_digest(
                str(app[0]).encode(), str(params.get("client_secret", "")).encode()
            ):
                raise ApiError(401, "invalid_client", "Invalid client credentials")
            if params.get("grant_type") != "refresh_token":
                raise ApiError(400, "unsupported_grant_type", "Only refresh_token is supported")
            row = self.store.conn.execute(
                "SELECT user_id FROM tokens WHERE refresh_token = ? AND revoked = 0",
                (str(params.get("refresh_token")),),
            ).fetchone()
            if row is None:
                raise ApiError(400, "invalid_grant", "Invalid refresh token")
            with self.store.tx() as c:
                c.execute(
                    "UPDATE tokens SET revoked = 1 WHERE refresh_token = ?",
                    (str(params["refresh_token"]),),
                )
            return self.issue_tokens(str(params["client_id"]), int(row[0]))

    def expire_tokens(self) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE tokens SET expires = ? WHERE revoked = 0", (time.time() - 1,))

    # -- calls ---------------------------------------------------------------------------------
    def run_method(
        self, method: str, params: dict[str, Any], caller: Caller, parent: int | None = None
    ) -> Result:
        if method in APP_ONLY and not caller.is_app:
            raise ApiError(
                403,
                "WRONG_AUTH_TYPE",
                "Current authorization type is denied for this method Application context required",
            )
        injected = self.faults.command_error(method)
        if injected:
            raise ApiError(400, injected[0], injected[1])
        if method == "batch":
            return self.run_batch(params, caller, parent)
        handler = METHODS.get(method)
        if handler is None:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        return handler(self.store, caller, params)

    def run_batch(
        self, params: dict[str, Any], caller: Caller, parent: int | None = None
    ) -> Result:
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):
            cmd = {str(i): v for i, v in enumerate(cmd)}
        if not isinstance(cmd, dict):
            raise ApiError(400, "INVALID_ARG_VALUE", "cmd must be an array")
        if len(cmd) > 50:
            raise ApiError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        halt = str(params.get("halt", "0")).lower() in ("1", "true", "y")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, int] = {}
        nexts: dict[str, int] = {}
        times: dict[str, Any] = {}
        for key, query in cmd.items():
            method, _, qs = str(query).partition("?")
            method = method.strip().lower().removesuffix(".json")
            started = time.time()
            sub = phpquery.parse(qs)
            try:
                if method == "batch":
                    raise ApiError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed")
                res = self.run_method(method, _resolve(sub, results), caller)
            except ApiError as exc:
                errors[key] = {"error": exc.code, "error_description": exc.description}
                self.store.log_call(method, sub, status=exc.status, error=exc.code, parent=parent)
                if halt:
                    break
                continue
            results[key] = res.result
            if res.total is not None:
                totals[key] = res.total
            if res.next is not None:
                nexts[key] = res.next
            times[key] = time_obj(started)
            self.store.log_call(method, sub, status=200, error=None, parent=parent)
        return Result(
            {
                "result": results or [],
                "result_error": errors or [],
                "result_total": totals or [],
                "result_next": nexts or [],
                "result_time": times or [],
            }
        )


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    """Substitute ``$result[key][path]``; an unresolvable reference fails the command."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if isinstance(value, str):
        match = _REF.match(value)
        if match:
            node: Any = results.get(match.group(1))
            for part in re.findall(r"\[([^\]]*)\]", match.group(2)):
                if isinstance(node, dict):
                    node = node.get(part)
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    node = None
            if node is None:
                raise ApiError(400, "INVALID_ARG_VALUE", f"Unresolved reference {value}")
            return node
    return value


def time_obj(started: float) -> dict[str, Any]:
    finish = time.time()
    tz = datetime.now(UTC).astimezone().tzinfo
    return {
        "start": started,
        "finish": finish,
        "duration": finish - started,
        "processing": finish - started,
        "date_start": datetime.fromtimestamp(started, tz).isoformat(timespec="seconds"),
        "date_finish": datetime.fromtimestamp(finish, tz).isoformat(timespec="seconds"),
        "operating_reset_at": int(started) + 600,
        "operating": 0,
    }


async def _params(request: Request) -> dict[str, Any]:
    params = phpquery.parse(request.url.query)
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and ctype == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, "INVALID_REQUEST", "Body is not valid JSON") from None
        if isinstance(data, dict):
            params.update(data)
    elif body:
        params.update(phpquery.parse(body.decode("utf-8", "replace")))
    return params


def _base_url(request: Request) -> str:
    """Where this portal answers, including the mount path (`/sandbox` in `clienthub run`)."""
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.code, "error_description": exc.description}, status_code=exc.status
    )


def create_sandbox_app(
    db_path: Path | str,
    *,
    seed_dir: Path | None = Path("routing_rules/sample"),
    webhook_code: str = "sandbox",
    rate: tuple[float, float] | None = (50, 2.0),
    token_ttl: int = TOKEN_TTL,
) -> FastAPI:
    portal = Portal(
        db_path, seed_dir=seed_dir, webhook_code=webhook_code, rate=rate, token_ttl=token_ttl
    )
    app = FastAPI(title="ClientHub Bitrix24 sandbox", docs_url=None, redoc_url=None)
    app.state.portal = portal

    def handle(method: str, params: dict[str, Any], source: str, caller_of: Any) -> Response:
        logged = {k: v for k, v in params.items() if k != "auth"}
        if portal.faults.outage:
            portal.store.log_call(method, logged, status=503, error="outage")
            return HTMLResponse("<html><body>503 Service Unavailable</body></html>", 503)
        started = time.time()
        call_id = portal.store.log_call(method, logged, status=0, error=None)
        try:
            caller = caller_of(params)
            if not portal.faults.rate_ok(source) or portal.faults.take_query_limit():
                raise ApiError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
            if portal.faults.take_operation_limit(method) is not None:
                raise ApiError(
                    429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."
                )
            res = portal.run_method(method, params, caller, call_id)
        except ApiError as exc:
            portal.store.finish_call(call_id, exc.status, exc.code)
            return _error(exc)
        portal.store.finish_call(call_id, 200, None)
        body: dict[str, Any] = {"result": res.result}
        if res.next is not None:
            body["next"] = res.next
        if res.total is not None:
            body["total"] = res.total
        body["time"] = time_obj(started)
        return JSONResponse(body)

    async def rest(request: Request, method: str, caller_of: Any) -> Response:
        method = method.lower().removesuffix(".json")
        source = request.client.host if request.client else "?"
        try:
            params = await _params(request)
        except ApiError as exc:
            return _error(exc)
        response = await run_in_threadpool(handle, method, params, source, caller_of)
        delay = portal.faults.take_latency(method) if response.status_code == 200 else 0.0
        if delay:
            await asyncio.sleep(delay)  # the method already ran: a client timeout is ambiguous
        return response

    @app.api_route("/rest/{user}/{code}/{method}", methods=["GET", "POST"])
    async def webhook_call(request: Request, user: str, code: str, method: str) -> Response:
        return await rest(request, method, lambda _p: portal.webhook_caller(user, code))

    @app.api_route("/rest/{method}", methods=["GET", "POST"])
    async def app_call(request: Request, method: str) -> Response:
        return await rest(request, method, lambda p: portal.token_caller(p.get("auth")))

    @app.api_route("/oauth/token/", methods=["GET", "POST"])
    async def oauth_token(request: Request) -> Response:
        try:
            tokens = portal.refresh_tokens(await _params(request))
        except ApiError as exc:
            return _error(exc)
        base = _base_url(request)
        return JSONResponse(
            {
                **tokens,
                "client_endpoint": f"{base}/rest/",
                "server_endpoint": f"{base}/oauth/rest/",
                "domain": request.url.netloc,
            }
        )

    @app.post("/_sandbox/apps")
    async def install_app(request: Request) -> dict[str, Any]:
        """Register a local application and return its install callback payload (``auth``)."""
        body = await request.json()
        portal.register_app(str(body["client_id"]), str(body["client_secret"]))
        base = _base_url(request)
        auth = portal.issue_tokens(str(body["client_id"]), int(body.get("user_id", 1)))
        auth.update(
            domain=request.url.netloc,
            client_endpoint=f"{base}/rest/",
            server_endpoint=f"{base}/oauth/rest/",
            application_token=secrets.token_hex(16),
        )
        return {"event": "ONAPPINSTALL", "data": {"VERSION": "1"}, "auth": auth}

    openlines_http.add_routes(app, portal)
    telephony.add_routes(app, portal.store)

    @app.post("/_sandbox/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("expire_tokens"):
            portal.expire_tokens()
        portal.faults.update(body)
        return portal.faults.describe()

    @app.get("/_sandbox/faults")
    def get_faults() -> dict[str, Any]:
        return portal.faults.describe()

    @app.get("/_sandbox/calls")
    def get_calls(since: int = 0, method: str | None = None, top: bool = False) -> dict[str, Any]:
        return {"calls": portal.store.calls(since, method, top)}

    @app.get("/_sandbox/state")
    def get_state() -> dict[str, Any]:
        counts = portal.store.count_items()
        return {
            "leads": counts.get(1, 0),
            "deals": counts.get(2, 0),
            "contacts": counts.get(3, 0),
            "comments": portal.store.scalar("SELECT count(*) FROM comments"),
            "calls": portal.store.scalar("SELECT count(*) FROM calls WHERE parent IS NULL"),
        }

    @app.post("/_sandbox/reset")
    def reset() -> dict[str, bool]:
        portal.reset()
        return {"ok": True}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
