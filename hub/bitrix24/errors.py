"""Typed errors from the portal. Each carries the method, the portal's code and description,
never a token or the webhook URL (invariant 7).

Classification follows the official Go SDK's retry rules (docs: sdk/b24gosdk/index.md):
``QUERY_LIMIT_EXCEEDED`` is a refusal before execution and always safe to retry; a timeout after
the request was sent, a network error mid-request or a code-less 5xx is *ambiguous* (the method
may have run), so a create is never retried without a lookup first. Codes come in mixed case and
503 covers both a rate refusal and a manual block, so we branch on the code, not the status.
"""

from __future__ import annotations

from typing import Any

from hub.logging import redact


class Bitrix24Error(Exception):
    """Base: ``transient`` says whether trying again later can succeed."""

    transient = False
    retry_after: float | None = None  # seconds, from a Retry-After header

    def __init__(
        self, method: str, code: str = "", description: str = "", status: int | None = None
    ) -> None:
        self.method = method
        self.code = code
        self.description = redact(description)[:500]
        self.status = status
        super().__init__(self._message())

    def _message(self) -> str:
        status = f" HTTP {self.status}" if self.status else ""
        code = self.code or "no code"
        return f"{self.method}: {code}{status}: {self.description}".rstrip(": ")


class TransientError(Bitrix24Error):
    """Worth retrying later: the portal is busy, slow or unreachable."""

    transient = True


class NotExecuted(TransientError):
    """The portal refused before running the method (or we never reached it): safe to retry."""


class QueryLimitExceeded(NotExecuted):
    """HTTP 503 ``QUERY_LIMIT_EXCEEDED``: the portal's leaky bucket overflowed."""


class OperationTimeLimit(NotExecuted):
    """HTTP 429 ``OPERATION_TIME_LIMIT``: this method used up its execution-time budget."""

    def __init__(self, *args: Any, reset_at: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset_at = reset_at


class PortalUnavailable(NotExecuted):
    """Connection refused, DNS failure, or a proxy's 502/503/504 page: nothing ran."""


class AmbiguousResult(TransientError):
    """The request was sent and the answer lost (timeout, reset, code-less 5xx): it may have run.
    A create must be followed by a lookup (on ``originId``) before any retry."""


class ExpiredToken(NotExecuted):
    """401 ``expired_token``: refresh and repeat (handled inside the client)."""


class AuthError(Bitrix24Error):
    """Credentials are wrong or revoked; a human must fix the configuration."""


class WrongAuthType(AuthError):
    """403 ``WRONG_AUTH_TYPE``: the method needs an application (OAuth) context, not a webhook."""


class MethodError(Bitrix24Error):
    """The portal ran the request and refused it (bad field, access denied, not found)."""


class OverloadLimit(TransientError):
    """503 ``OVERLOAD_LIMIT``: the portal was blocked by hand; the client does not retry it, the
    job queue does after its backoff (an outage only delays, invariant 3)."""


_BY_CODE: dict[str, type[Bitrix24Error]] = {
    "query_limit_exceeded": QueryLimitExceeded,
    "operation_time_limit": OperationTimeLimit,
    "overload_limit": OverloadLimit,
    "expired_token": ExpiredToken,
    "wrong_auth_type": WrongAuthType,
    "no_auth_found": AuthError,
    "invalid_token": AuthError,
    "invalid_credentials": AuthError,
    "invalid_grant": AuthError,
    "insufficient_scope": AuthError,
    "payment_required": AuthError,
    "portal_deleted": AuthError,
    "internal_server_error": AmbiguousResult,
    "error_unexpected_answer": AmbiguousResult,
}


def error_from_body(
    method: str, status: int | None, body: Any, *, reset_at: float | None = None
) -> Bitrix24Error:
    """Map an error envelope ``{"error": …, "error_description": …}`` to its type."""
    code = ""
    description = ""
    if isinstance(body, dict):
        code = str(body.get("error") or "")
        description = str(body.get("error_description") or "")
    elif isinstance(body, str):
        description = body[:200]
    cls = _BY_CODE.get(code.lower())
    if cls is None:
        if status is not None and status >= 500:
            # A code-less 5xx: the method may have run (Go SDK rule).
            cls = AmbiguousResult if code == "" else MethodError
        else:
            cls = MethodError
    if cls is OperationTimeLimit:
        return OperationTimeLimit(method, code, description, status, reset_at=reset_at)
    return cls(method, code, description, status)
