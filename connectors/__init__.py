"""Explicit connector registry: channel name -> connector."""

from __future__ import annotations

from connectors import form
from connectors.base import Connector

CONNECTORS: dict[str, Connector] = {
    form.connector.channel: form.connector,
}


def get_connector(channel: str) -> Connector | None:
    return CONNECTORS.get(channel)
