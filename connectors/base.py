"""The connector contract. Nothing outside connectors/ knows a platform's JSON.

A connector has two halves, called at different times:
- ``verify`` runs inside the HTTP request, before the 2xx: check the signature or secret, find the
  platform event id, and say what to answer. It must be fast and must not touch the database.
- ``parse`` runs later in a worker on the stored raw event: pure, driven by an ``EVENT_HANDLERS``
  table, returns appeals. An unknown event kind raises ``UnsupportedEvent``; the raw event stays
  stored with that status, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Rejected(Exception):
    """The request is refused; ``status`` is the HTTP answer and ``reason`` is recorded."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UnsupportedEvent(Exception):
    """An event kind the connector does not handle (stored, marked, never guessed at)."""


class IgnoredEvent(Exception):
    """A valid event that must produce no appeal (the community's own echo, a service event)."""


@dataclass(frozen=True)
class InboundRequest:
    """What ``verify`` sees of an HTTP request. Header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str  # the bare media type, lower case, e.g. "application/json"
    # The client's address: the TCP peer, or X-Forwarded-For from a trusted proxy (settings).
    remote_addr: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    """A configured source (``channel_sources`` row) with its secrets decrypted."""

    channel: str
    source: str
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verified:
    """The outcome of ``verify``: what to store and what to answer the platform."""

    external_id: str | None  # platform event id; a repeat is acknowledged and stored once
    event_type: str | None = None
    store: bool = True  # False for handshakes (VK confirmation) that carry no appeal
    response_body: bytes = b'{"ok":true}'
    response_media_type: str = "application/json"
    response_status: int = 200


@dataclass(frozen=True)
class RawEventView:
    """What ``parse`` gets: the stored raw event."""

    id: int
    channel: str
    source: str
    external_id: str | None
    event_type: str | None
    headers: Mapping[str, Any]
    content_type: str | None
    body: bytes
    received_at: datetime
    # The source's non-secret settings (field mapping, group id...), as configured now.
    source_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Author:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    platform_id: str | None = None


@dataclass
class ParsedAppeal:
    """One customer appeal as a connector sees it, before routing."""

    kind: str  # message, comment, review, call, form, email
    external_id: str | None  # stable across platform retries
    thread_key: str | None  # one deal per dialogue or per post's comment thread
    text: str
    author: Author = field(default_factory=Author)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    rating: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None  # the platform's time, when it gives one
    is_edit: bool = False


class Connector(Protocol):
    channel: str

    def verify(self, request: InboundRequest, source: SourceConfig) -> Verified: ...

    def parse(self, event: RawEventView) -> list[ParsedAppeal]: ...


@dataclass(frozen=True)
class OutgoingReply:
    """A staff answer to send back where the customer wrote.

    ``reply_id`` is ClientHub's id for this reply: connectors derive the platform's idempotency
    key from it (VK ``random_id``), so a retried send never posts twice.
    """

    reply_id: str
    text: str
    thread_key: str | None
    in_reply_to: str | None  # the platform id of the customer's message or comment
    author_platform_id: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)  # the appeal's fields (peer ids...)


@dataclass(frozen=True)
class SentReply:
    platform_message_id: str | None
    detail: str = ""


class ReplyingConnector(Connector, Protocol):
    """A connector that can answer where the customer wrote (VK, Telegram, OK).

    ``send_reply`` runs in a worker job, never in a request. It raises
    ``connectors.platform_http.TransientError`` when a later retry may succeed (network, rate
    limit, 5xx) and ``PermanentError`` when it cannot (bad token, the customer blocked the
    community, nothing to reply to). The reply's platform id comes back in ``SentReply``.
    """

    def send_reply(self, reply: OutgoingReply, source: SourceConfig) -> SentReply: ...
