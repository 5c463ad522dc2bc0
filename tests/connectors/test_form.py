"""Site forms over real HTTP: Tilda's dialect, uploads and their links, the signed variant, the
anti-spam checks, the per-IP limit and field mapping (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from connectors.form.guards import signature
from hub.db import session_scope
from hub.models import Appeal, RawEvent, RejectedRequest
from hub.storage import sources as sources_store
from tests.conftest import LiveServer
from tests.helpers import count, drain

URLENC = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def live_server(engine) -> Iterator[LiveServer]:
    """The real app, with the file download route mounted if the app does not mount it yet."""
    from hub.bootstrap import ensure_defaults
    from hub.http import files as files_http
    from hub.http.app import create_app
    from hub.settings import get_settings

    settings = get_settings()
    ensure_defaults(engine, settings)
    app = create_app(settings, engine)
    if not any(getattr(r, "path", "") == "/files/{file_id}/{name}" for r in app.routes):
        app.include_router(files_http.router)
    with LiveServer(app) as server:
        yield server


def _source(engine, channel: str, name: str, config: dict | None = None, **secrets: str) -> None:
    with session_scope(engine) as s:
        sources_store.upsert(s, channel=channel, source=name, config=config or {}, secrets=secrets)


def _appeal(engine) -> Appeal:
    drain(engine)
    with session_scope(engine, read_only=True) as s:
        return s.execute(select(Appeal)).scalar_one()


class TestTilda:
    def test_the_connection_test_is_answered_ok_and_not_stored(self, live_server, engine) -> None:
        _source(engine, "tilda", "landing", api_key="k3y")
        r = httpx.post(
            f"{live_server.url}/hooks/tilda/landing", content=b"test=test", headers=URLENC
        )
        assert (r.status_code, r.text) == (200, "ok")
        assert count(engine, RawEvent) == 0

    def test_a_submission_with_the_api_key_is_stored_once_per_tranid(
        self, live_server, engine
    ) -> None:
        _source(engine, "tilda", "landing", api_key="k3y")
        body = (
            "Name=Иван&Phone=%2B79161234567&Textarea=Есть+ли+доставка%3F"
            "&tranid=1111111:6161583731&formid=form42"
        )
        url = f"{live_server.url}/hooks/tilda/landing"
        for _ in range(3):  # Tilda retries twice when the answer is late
            r = httpx.post(url, content=body.encode(), headers={**URLENC, "X-API-Key": "k3y"})
            assert (r.status_code, r.text) == (200, "ok")
        a = _appeal(engine)
        assert (a.channel, a.external_id, a.text) == (
            "tilda",
            "tranid:1111111:6161583731",
            "Есть ли доставка?",
        )
        assert (a.author_name, a.author_phone) == ("Иван", "+79161234567")
        assert a.fields == {"tranid": "1111111:6161583731", "formid": "form42"}

    def test_the_key_may_come_as_a_field_and_never_reaches_the_appeal(
        self, live_server, engine
    ) -> None:
        _source(engine, "tilda", "landing", {"api_key_name": "apikey"}, api_key="k3y")
        url = f"{live_server.url}/hooks/tilda/landing"
        assert (
            httpx.post(url, json={"Name": "Оля", "Email": "o@x.ru", "tranid": "1:2"}).status_code
            == 403
        )
        r = httpx.post(
            url, json={"Name": "Оля", "Email": "o@x.ru", "tranid": "1:2", "apikey": "k3y"}
        )
        assert r.status_code == 200
        assert "apikey" not in _appeal(engine).fields

    def test_a_source_without_secrets_refuses_submissions(self, live_server, engine) -> None:
        _source(engine, "tilda", "open")
        r = httpx.post(
            f"{live_server.url}/hooks/tilda/open", content=b"Phone=1&tranid=9", headers=URLENC
        )
        assert r.status_code == 403 and "no api_key or token" in r.json()["error"]


class TestUploads:
    def test_files_are_linked_from_the_appeal_and_served_back(self, live_server, engine) -> None:
        photo = b"\x89PNG\r\n\x1a\n" + b"x" * 100
        r = httpx.post(
            f"{live_server.url}/hooks/form/site",
            data={"name": "Пётр", "message": "Ценник не совпадает"},
            files={"photo": ("ценник.png", photo, "image/png"), "empty": ("", b"", "text/plain")},
        )
        assert r.status_code == 200, r.text
        a = _appeal(engine)
        [att] = a.attachments
        sha = hashlib.sha256(photo).hexdigest()
        assert (att["name"], att["size"], att["field"]) == ("ценник.png", len(photo), "photo")
        assert (
            att["url"] == f"/files/e{a.raw_event_id}.{sha}/%D1%86%D0%B5%D0%BD%D0%BD%D0%B8%D0%BA.png"
        )
        got = httpx.get(live_server.url + att["url"])
        assert (got.status_code, got.content, got.headers["content-type"]) == (
            200,
            photo,
            "image/png",
        )
        assert got.headers["x-content-type-options"] == "nosniff"
        wrong = httpx.get(f"{live_server.url}/files/e{a.raw_event_id}.{'0' * 64}/x.png")
        assert wrong.status_code == 404

    def test_an_uploaded_html_page_is_only_ever_a_download(self, live_server, engine) -> None:
        page = b"<script>alert(1)</script>"
        httpx.post(
            f"{live_server.url}/hooks/form/site",
            data={"message": "см. файл"},
            files={"f": ("x.html", page, "text/html")},
        )
        got = httpx.get(live_server.url + _appeal(engine).attachments[0]["url"])
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment;")


class TestSignedForms:
    BODY = b'{"name": "Ann", "phone": "+79990001122", "message": "hi"}'

    def _post(self, url: str, *, secret: str = "s3", stamp: float | None = None) -> httpx.Response:
        ts = str(int(stamp if stamp is not None else time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Timestamp": ts,
            "X-Signature": signature(secret, ts, self.BODY),
        }
        return httpx.post(url, content=self.BODY, headers=headers)

    def test_signature_and_timestamp_are_checked(self, live_server, engine) -> None:
        _source(engine, "form", "partner", hmac_secret="s3")
        url = f"{live_server.url}/hooks/form/partner"
        assert self._post(url).status_code == 200
        assert self._post(url, secret="nope").status_code == 401
        assert self._post(url, stamp=time.time() - 3600).status_code == 401  # a replay
        assert (
            httpx.post(
                url, content=self.BODY, headers={"Content-Type": "application/json"}
            ).status_code
            == 401
        )
        reasons = [r.reason for r in _rejected(engine)]
        assert any("does not match" in r for r in reasons)
        assert any("more than 300 s off" in r for r in reasons)


def _rejected(engine) -> list[RejectedRequest]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(RejectedRequest)).scalars())


class TestSpamChecks:
    @pytest.mark.parametrize(
        ("extra", "reason"),
        [
            ("&_hp=http%3A%2F%2Fspam.example", "hidden field '_hp' was filled in"),
            ("&_elapsed_ms=400", "sent 0.4 s after the form opened"),
        ],
    )
    def test_bots_are_refused_with_the_reason(self, live_server, engine, extra, reason) -> None:
        body = "message=Купите+наши+услуги&phone=89161234567" + extra
        r = httpx.post(f"{live_server.url}/hooks/form/site", content=body.encode(), headers=URLENC)
        assert r.status_code == 422 and reason in r.json()["error"]
        assert count(engine, RawEvent) == 0

    def test_a_person_passes_and_the_service_fields_are_dropped(self, live_server, engine) -> None:
        body = "message=Здравствуйте&phone=89161234567&_hp=&_elapsed_ms=8200"
        assert (
            httpx.post(
                f"{live_server.url}/hooks/form/site", content=body.encode(), headers=URLENC
            ).status_code
            == 200
        )
        assert _appeal(engine).fields == {}

    def test_the_per_ip_limit(self, live_server, engine) -> None:
        from connectors.form import rate_limiter

        rate_limiter._buckets.clear()  # the buckets live in this process, across tests
        _source(engine, "form", "limited", {"rate_limit_per_minute": 1, "rate_limit_burst": 2})
        url = f"{live_server.url}/hooks/form/limited"
        codes = [
            httpx.post(url, content=f"message=m{i}".encode(), headers=URLENC).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]


def test_field_mapping_per_source(live_server, engine) -> None:
    mapping = {"fields": {"phone": "tel2", "city": "gorod", "store": "shop_no", "form": "what"}}
    _source(engine, "form", "hr", mapping)
    body = {
        "tel2": "8 (4822) 12-34-56",
        "gorod": "Тверь",
        "shop_no": "1012",
        "what": "vacancy",
        "utm": "vk",
    }
    assert httpx.post(f"{live_server.url}/hooks/form/hr", json=body).status_code == 200
    a = _appeal(engine)
    assert a.author_phone == "8 (4822) 12-34-56"
    assert a.fields == {"city": "Тверь", "store": "1012", "form": "vacancy", "utm": "vk"}
