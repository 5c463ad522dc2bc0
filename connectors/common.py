"""Helpers shared by connectors: body decoding with clear refusals, constant-time secret checks."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from connectors.base import Rejected


def decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"body is not valid UTF-8 (byte {exc.start})") from exc


def json_object(body: bytes) -> dict[str, Any]:
    text = decode_utf8(body)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError:
        # A body of a few thousand nested brackets exhausts the decoder's stack: refuse it
        # (found by tests/reliability/test_fuzz_parsers.py; it used to answer 500).
        raise Rejected(400, "malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise Rejected(422, f"JSON body must be an object, got {type(value).__name__}")
    return value


def urlencoded(body: bytes) -> dict[str, Any]:
    text = decode_utf8(body)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError as exc:
        raise Rejected(400, f"malformed form body: {exc}") from exc
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:  # repeated keys (checkboxes) become a list
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def multipart(body: bytes, content_type_header: str) -> dict[str, Any]:
    """Text fields of a multipart/form-data body; files are listed by name, not kept inline."""
    head = f"Content-Type: {content_type_header}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise Rejected(400, "malformed multipart body (no parts or no boundary)")
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if filename:
            out.setdefault("_files", []).append(
                {"field": name, "name": filename, "size": len(payload)}
            )
            continue
        out[str(name)] = decode_utf8(payload)
    return out


def form_fields(body: bytes, content_type: str, content_type_header: str) -> dict[str, Any]:
    if content_type == "application/json":
        return json_object(body)
    if content_type == "application/x-www-form-urlencoded":
        return urlencoded(body)
    if content_type == "multipart/form-data":
        return multipart(body, content_type_header)
    raise Rejected(
        415,
        f"unsupported content type {content_type or '(none)'!r}: send application/json, "
        "application/x-www-form-urlencoded or multipart/form-data",
    )


def check_secret(expected: str | None, given: str | None, what: str) -> None:
    """An empty configured secret disables the check only when the source allows it explicitly
    (checked by the caller); otherwise compare in constant time."""
    if expected is None:
        return
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Rejected(403, f"{what} is missing or wrong")


def pick(fields: Mapping[str, Any], names: list[str]) -> tuple[str | None, Any]:
    """The first present, non-empty field among ``names`` (case-insensitive)."""
    lowered = {k.lower(): k for k in fields}
    for name in names:
        key = lowered.get(name.lower())
        if key is not None and fields[key] not in (None, "", []):
            return key, fields[key]
    return None, None
