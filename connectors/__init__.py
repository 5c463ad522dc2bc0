"""Explicit connector registry: channel name -> connector."""

from __future__ import annotations

from connectors import form, ok, telegram, vk
from connectors.base import Connector

CONNECTORS: dict[str, Connector] = {
    form.connector.channel: form.connector,
    vk.connector.channel: vk.connector,
    telegram.connector.channel: telegram.connector,
    ok.connector.channel: ok.connector,
}


def get_connector(channel: str) -> Connector | None:
    return CONNECTORS.get(channel)
