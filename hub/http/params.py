"""Shared request parameter types.

Database ids are 64-bit: an unbounded ``int`` parameter lets a client send 2**70 and get the
driver's OverflowError as a 500 (found by tests/reliability/test_schema.py). Bounded here once,
they are a 422 everywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query

MAX_ID = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]


def invalid(field: str, message: str, where: str = "query") -> HTTPException:
    """A 422 shaped as FastAPI's own validation errors, so a client parses one format and the
    answer matches the documented schema."""
    return HTTPException(422, [{"loc": [where, field], "msg": message, "type": "value_error"}])
