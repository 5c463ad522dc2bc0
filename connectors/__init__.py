"""Explicit connector registry: channel name -> connector."""

from __future__ import annotations

from connectors import cti, email, form, mango, ok, telegram, twogis, uis, vk, yandex
from connectors.base import Connector
from connectors.form import tilda

CONNECTORS: dict[str, Connector] = {
    form.connector.channel: form.connector,
    tilda.connector.channel: tilda.connector,
    vk.connector.channel: vk.connector,
    telegram.connector.channel: telegram.connector,
    ok.connector.channel: ok.connector,
    twogis.connector.channel: twogis.connector,
    yandex.connector.channel: yandex.connector,
    email.connector.channel: email.connector,
    mango.connector.channel: mango.connector,
    uis.connector.channel: uis.connector,
    cti.connector.channel: cti.connector,
}


def get_connector(channel: str) -> Connector | None:
    return CONNECTORS.get(channel)
