"""Operator files in replies are fetched under the SSRF guard: only from the portal's own hosts
(which may be on the office network), any other link refused with the reason kept on the
attachment, never fetched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

from hub.db import session_scope
from hub.models import PortalToken
from hub.reply_content import fetch_attachments, portal_hosts
from hub.settings import Settings
from hub.timeutil import utcnow
from tests.conftest import LiveServer

served: list[str] = []


def _file(request: Request) -> PlainTextResponse:
    served.append(str(request.url))
    return PlainTextResponse("пн-вс 9-21")


def _away(request: Request) -> RedirectResponse:
    target = request.query_params["to"]
    return RedirectResponse(target)


@pytest.fixture(scope="module")
def portal() -> Iterator[LiveServer]:
    app = Starlette(
        routes=[
            Route("/healthz", lambda r: PlainTextResponse("ok")),
            Route("/pub/im.file.php", _file),
            Route("/away", _away),
        ]
    )
    with LiveServer(app) as server:
        yield server


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(files_dir=tmp_path / "files", **values)  # type: ignore[arg-type]


def _item(link: str) -> dict[str, object]:
    return {"name": "график.txt", "link": link, "media_type": "", "fetched": False}


def test_a_file_from_the_portal_is_fetched_even_on_the_office_network(
    portal: LiveServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    [stored], [(data, _entry)] = fetch_attachments(
        [_item(f"{portal.url}/pub/im.file.php?FILE_ID=1")], settings, ["127.0.0.1"]
    )
    assert stored["fetched"] and data == "пн-вс 9-21".encode()


@pytest.mark.parametrize(
    "link",
    [
        "http://localhost:{port}/pub/im.file.php",  # the same server under a name not allowed
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1:{port}/pub/im.file.php",  # credentials in the URL
    ],
)
def test_a_link_elsewhere_is_refused_with_its_reason(
    portal: LiveServer, tmp_path: Path, link: str
) -> None:
    served.clear()
    link = link.format(port=portal.port)
    [stored], blobs = fetch_attachments([_item(link)], _settings(tmp_path), ["127.0.0.1"])
    assert blobs == [] and not stored.get("fetched")
    assert stored["error"], stored
    assert served == []  # nothing reached any server


def test_a_redirect_off_the_portal_is_refused(portal: LiveServer, tmp_path: Path) -> None:
    link = f"{portal.url}/away?to=http://169.254.169.254/latest/meta-data/"
    [stored], blobs = fetch_attachments([_item(link)], _settings(tmp_path), ["127.0.0.1"])
    assert blobs == [] and "169.254.169.254" in stored["error"]


def test_without_a_portal_nothing_is_fetched(portal: LiveServer, tmp_path: Path) -> None:
    served.clear()
    link = f"{portal.url}/pub/im.file.php?FILE_ID=1"
    [stored], blobs = fetch_attachments([_item(link)], _settings(tmp_path), [])
    assert blobs == [] and stored["error"] == "no Bitrix24 portal is configured"
    assert served == []


def test_a_file_over_the_limit_is_refused(portal: LiveServer, tmp_path: Path) -> None:
    settings = _settings(tmp_path, reply_attachment_max_bytes=5)
    link = f"{portal.url}/pub/im.file.php?FILE_ID=1"
    [stored], blobs = fetch_attachments([_item(link)], settings, ["127.0.0.1"])
    assert blobs == [] and "over 5" in stored["error"]


def test_the_portal_hosts_are_the_webhooks_and_the_installed_applications(
    engine: Engine, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path,
        b24_webhook_url=SecretStr("https://shop.bitrix24.ru/rest/1/abc/"),
        b24_portal_domain="shop.bitrix24.ru",
    )
    with session_scope(engine) as s:
        s.add(
            PortalToken(
                domain="crm.example.ru:8443",
                client_endpoint="https://crm.example.ru:8443/rest/",
                access_token_enc="x",
                refresh_token_enc="x",
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    with session_scope(engine, read_only=True) as s:
        assert portal_hosts(s, settings) == ["crm.example.ru", "shop.bitrix24.ru"]
