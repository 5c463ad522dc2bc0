"""Secrets stay secret (DESIGN.md invariant 7): constant-time comparisons, no endpoint that an
empty secret opens, secrets encrypted at rest, and replays stored once."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from connectors import CONNECTORS
from connectors.base import InboundRequest, Rejected, SourceConfig
from hub.db import session_scope
from hub.storage import sources as sources_store

ROOT = Path(__file__).resolve().parents[2]
CHECKED = [
    *sorted((ROOT / "connectors").rglob("*.py")),
    *sorted((ROOT / "hub" / "bitrix24").glob("*.py")),
    *sorted((ROOT / "hub" / "ui").glob("*.py")),
    *sorted((ROOT / "hub" / "http").glob("*.py")),
    ROOT / "hub" / "files.py",
    ROOT / "hub" / "crypto.py",
]
SECRETISH = re.compile(r"secret|token|sign(ature)?$|digest|password|hmac|^sig$", re.I)
# Comparisons of our own values with each other, not of a caller's claim with a secret.
EXEMPT = {
    "stored.access_token != seen_access_token": "hub/bitrix24/oauth.py: did another worker "
    "refresh the token meanwhile (both values are ours)",
}


def _name(node: ast.expr) -> str:
    """The identifier an operand ends in: ``tokens.member_id`` -> ``member_id``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


# Site forms are public by design (a token is optional; honeypot, timing and per-IP limits guard
# them: connectors/form/guards.py). Every other channel needs its secret configured.
OPEN_WITHOUT_SECRET = {"form", "tilda"}
JSON = "application/json"


def _comparisons(path: Path) -> list[str]:
    """``==``/``!=`` between two non-literal operands that look like secrets."""
    source = path.read_text("utf-8")
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq):
                continue
            if isinstance(left, ast.Constant) or isinstance(right, ast.Constant):
                continue
            if ast.unparse(node) in EXEMPT:
                continue
            if SECRETISH.search(_name(left)) or SECRETISH.search(_name(right)):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_secrets_are_compared_in_constant_time() -> None:
    found = [hit for path in CHECKED if path.exists() for hit in _comparisons(path)]
    assert not found, "use hmac.compare_digest:\n" + "\n".join(found)


def test_the_scan_would_catch_a_plain_comparison(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def verify(given, secret):\n    return given == secret or 'x' == secret\n")
    assert len(_comparisons(bad)) == 1


@pytest.mark.parametrize("channel", sorted(CONNECTORS))
def test_no_channel_opens_with_an_empty_secret(channel: str) -> None:
    """ "An empty secret verifies against an empty key, which anyone can forge" (Polar)."""
    connector = CONNECTORS[channel]
    bodies = [
        (b'{"type": "message_new", "event_id": "e", "group_id": 1, "secret": ""}', JSON),
        (b'{"update_id": 1, "message": {"message_id": 1}}', JSON),
        (b"name=A&phone=1&message=hi", "application/x-www-form-urlencoded"),
    ]  # fmt: skip
    accepted = False
    for body, content_type in bodies:
        request = InboundRequest(
            method="POST", path=f"/hooks/{channel}/main", headers={"content-type": content_type},
            query={}, body=body, content_type=content_type, remote_addr="203.0.113.9",
        )  # fmt: skip
        try:
            verified = connector.verify(request, SourceConfig(channel, "main", {}, {}))
        except Rejected:
            continue
        accepted = accepted or verified.store
    if channel not in OPEN_WITHOUT_SECRET:
        assert not accepted, f"{channel} stored an event with no secret configured"


def test_secrets_are_encrypted_at_rest(engine) -> None:
    secret = "vk1.a.plain-text-must-not-be-stored"
    with session_scope(engine) as s:
        sources_store.upsert(s, channel="vk", source="c1", secrets={"token": secret})
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM channel_sources")).all()
    dumped = json.dumps([list(map(str, r)) for r in rows])
    assert "plain-text-must-not-be-stored" not in dumped
    with session_scope(engine, read_only=True) as s:
        [row] = [r for r in sources_store.list_all(s) if r.source == "c1"]
        assert sources_store.to_config(row).secrets == {"token": secret}


def test_a_replayed_webhook_is_stored_once(live_server, engine) -> None:
    """No platform ClientHub takes signs a timestamp, so there is no window to enforce; a
    captured request replayed later is answered and stored once, by its platform event id."""
    with session_scope(engine) as s:
        sources_store.upsert(
            s, channel="vk", source="club7", config={"group_id": 7}, secrets={"secret": "k"}
        )
    body = {
        "type": "message_new", "event_id": "replay-1", "group_id": 7, "secret": "k",
        "object": {"message": {"id": 1, "peer_id": 5, "from_id": 5, "date": 1, "text": "hi",
                               "conversation_message_id": 1}},
    }  # fmt: skip
    first = httpx.post(f"{live_server.url}/hooks/vk/club7", json=body)
    again = httpx.post(f"{live_server.url}/hooks/vk/club7", json=body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.headers["x-clienthub-duplicate"] == "0"
    assert again.headers["x-clienthub-duplicate"] == "1"
    assert again.headers["x-clienthub-event"] == first.headers["x-clienthub-event"]
    wrong = httpx.post(f"{live_server.url}/hooks/vk/club7", json={**body, "secret": "K"})
    assert wrong.status_code == 403 and "k" not in wrong.json()["error"].split()
