"""The sandbox's error envelope and call context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.status, self.code, self.description = status, code, description


@dataclass(frozen=True)
class Caller:
    user_id: int
    is_app: bool
    client_id: str = ""  # the application whose token made the call (app context only)


@dataclass
class Result:
    result: Any
    total: int | None = None
    next: int | None = None
