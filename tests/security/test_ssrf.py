"""The SSRF guard (hub/netguard.py) and the fetch sites wired to it."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response

from connectors.base import SourceConfig
from connectors.telegram.files import router as telegram_files
from hub.fakes.serve import serve
from hub.fakes.telegram import FakeTelegram
from hub.netguard import (
    FetchPolicy,
    FetchRefused,
    TooLarge,
    check_url,
    fetch_bytes,
    is_public,
    policy_from_settings,
)
from hub.settings import get_settings


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, _port: int) -> list[str]:
        return table[host]

    return resolve


class TestIsPublic:
    @pytest.mark.parametrize(
        "addr",
        [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
            "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
            "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "192.0.2.1",
        ],
    )  # fmt: skip
    def test_internal_addresses_are_not_public(self, addr: str) -> None:
        assert not is_public(ipaddress.ip_address(addr))

    @pytest.mark.parametrize("addr", ["93.158.134.3", "149.154.167.220", "2a00:1450:4010::8a"])
    def test_internet_addresses_are(self, addr: str) -> None:
        assert is_public(ipaddress.ip_address(addr))


class TestCheckUrl:
    def test_host_must_be_one_of_the_platforms(self) -> None:
        policy = FetchPolicy(
            allowed_hosts=("*.uiscom.ru", ".mango-office.ru"),
            resolver=resolver({"rec.uiscom.ru": ["93.158.134.3"], "app.mango-office.ru":
                               ["93.158.134.4"], "evil.example": ["93.158.134.5"]}),
        )  # fmt: skip
        assert check_url("https://rec.uiscom.ru/a.mp3", policy).addresses == ("93.158.134.3",)
        check_url("https://app.mango-office.ru/x", policy)
        with pytest.raises(FetchRefused, match="not one of"):
            check_url("https://evil.example/a.mp3", policy)

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:5432/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:10.0.0.1]/", "http://0x7f000001/", "http://2130706433/",
        ],
    )  # fmt: skip
    def test_internal_literals_are_refused(self, url: str) -> None:
        # A resolver answers the numeric spellings as getaddrinfo does.
        table = {"0x7f000001": ["127.0.0.1"], "2130706433": ["127.0.0.1"]}
        with pytest.raises(FetchRefused):
            check_url(url, FetchPolicy(resolver=resolver(table)))

    def test_a_name_with_one_internal_address_is_refused(self) -> None:
        policy = FetchPolicy(resolver=resolver({"cdn.example": ["93.158.134.3", "10.0.0.8"]}))
        with pytest.raises(FetchRefused, match="10.0.0.8"):
            check_url("https://cdn.example/file", policy)

    @pytest.mark.parametrize(
        "url", ["file:///etc/passwd", "gopher://x/", "https://user:pw@host.example/"]
    )
    def test_schemes_and_credentials(self, url: str) -> None:
        with pytest.raises(FetchRefused):
            check_url(url, FetchPolicy(resolver=resolver({"host.example": ["93.158.134.3"]})))

    def test_tests_and_office_networks_can_be_allowed(self) -> None:
        check_url("http://127.0.0.1:9/", FetchPolicy(allow_private=True))
        check_url("http://10.0.0.5/", FetchPolicy(allow_networks=("10.0.0.0/24",)))
        with pytest.raises(FetchRefused):
            check_url("http://10.0.1.5/", FetchPolicy(allow_networks=("10.0.0.0/24",)))

    def test_settings_feed_the_policy(self) -> None:
        s = get_settings().model_copy(update={"fetch_allow_networks": ["10.0.0.0/8"]})
        policy = policy_from_settings(s, hosts=["pbx.local"])
        assert policy.allowed_hosts == ("pbx.local",) and not policy.allow_private
        assert policy.allow_networks == ("10.0.0.0/8",)


def _files_app() -> FastAPI:
    app = FastAPI()

    @app.get("/small")
    def small() -> Response:
        return Response(b"x" * 100)

    @app.get("/big")
    def big() -> Response:
        return Response(b"x" * 5000)

    @app.get("/hop")
    def hop() -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/")

    return app


class TestGuardedFetch:
    def test_pins_the_checked_address_and_limits_size(self) -> None:
        with serve(_files_app()) as url:
            port = httpx.URL(url).port
            # "files.example" resolves (in this policy) to loopback, which the policy allows:
            # the connection goes to the checked address while the Host header keeps the name.
            policy = FetchPolicy(
                allowed_hosts=("files.example", "169.254.169.254"),
                allow_networks=("127.0.0.0/8",),
                resolver=resolver({"files.example": ["127.0.0.1"]}),
            )
            body, _ = fetch_bytes(f"http://files.example:{port}/small", policy, max_bytes=1000)
            assert body == b"x" * 100
            with pytest.raises(TooLarge):
                fetch_bytes(f"http://files.example:{port}/big", policy, max_bytes=1000)
            with pytest.raises(FetchRefused, match="non-public"):  # every redirect hop checked
                fetch_bytes(f"http://files.example:{port}/hop", policy, max_bytes=1000)

    def test_rebinding_cannot_swap_the_address(self) -> None:
        answers = iter([["93.158.134.3"], ["127.0.0.1"]])
        policy = FetchPolicy(resolver=lambda h, p: next(answers))
        target = check_url("http://rebind.example/", policy)
        assert target.addresses == ("93.158.134.3",)  # what the transport then connects to


class TestTelegramFiles:
    def test_a_bot_api_on_an_internal_address_is_refused(self, monkeypatch) -> None:
        """The files route fetches through getFile; with the Bot API's host on loopback and no
        test switch, the guard refuses the download and nothing leaks."""
        monkeypatch.delenv("CLIENTHUB_ALLOW_PRIVATE_FETCH", raising=False)
        get_settings.cache_clear()
        fake = FakeTelegram(token="1:T")
        fake.add_file("F1", "photos/f.jpg", b"jpeg")
        with serve(fake.app) as api:
            source = SourceConfig("telegram", "bot", {"api_url": api}, {"token": "1:T"})

            class Sources:
                def get(self, channel: str, name: str) -> SourceConfig | None:
                    return source

            app = FastAPI()
            app.include_router(telegram_files)
            app.state.sources = Sources()
            with serve(app) as url:
                refused = httpx.get(f"{url}/files/telegram/bot/F1")
                monkeypatch.setenv("CLIENTHUB_ALLOW_PRIVATE_FETCH", "true")
                get_settings.cache_clear()
                allowed = httpx.get(f"{url}/files/telegram/bot/F1")
        get_settings.cache_clear()
        assert refused.status_code == 404 and "non-public" in refused.text
        assert "1:T" not in refused.text
        assert (allowed.status_code, allowed.content) == (200, b"jpeg")
