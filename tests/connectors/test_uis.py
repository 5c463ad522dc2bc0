"""UIS / CoMagic: one test per notification template, the secret and the address allow-list,
then the fake PBX posting a call's notifications out of order and twice over real HTTP, with the
recording downloaded from its ``file_link`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors import get_connector
from connectors.base import IgnoredEvent, InboundRequest, RawEventView, Rejected, SourceConfig
from connectors.uis import EVENT_HANDLERS
from hub.fakes.pbx import FakePbx, uis_post
from hub.fakes.serve import serve
from hub.models import RawEvent, RejectedRequest
from tests.connectors.helpers import (
    RECEIVED,
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
)
from tests.fakes.pbx import appeals, calls_of, drain_until, hub_server, source
from tests.helpers import count

SECRET = "uis-notification-secret"
SESSION = "2801563201"


def values(name: str) -> dict:
    return json.loads(fixture_bytes("uis", name))


def parse(name: str, **config: object) -> list:
    return get_connector("uis").parse(
        RawEventView(
            id=4,
            channel="uis",
            source="retail",
            external_id="x",
            event_type=name.split("__")[0],
            headers={},
            content_type="application/json; charset=utf-8",
            body=fixture_bytes("uis", name),
            received_at=RECEIVED,
            source_config=config,
        )
    )


def msk(*parts: int) -> str:
    return datetime(*parts, tzinfo=UTC).isoformat()


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    assert fixtures_without_tests("uis", sys.modules[__name__]) == []
    assert handlers_without_fixtures("uis", EVENT_HANDLERS) == []


def test_incoming_call__virtual_number() -> None:
    [a] = parse("incoming_call__virtual_number")
    assert (a.kind, a.external_id, a.author.phone) == ("call", SESSION, "+79161234567")
    assert a.fields == {
        "call_id": SESSION,
        "event": "incoming_call",
        "at": msk(2024, 6, 3, 12, 24, 57),  # 15:24:57 Moscow time
        "caller": "+79161234567",
        "line": "+74951234567",
        "scenario": "Розница — основной",
        "contact_name": "Иван Петров",
        "direction": "in",
        "started_at": msk(2024, 6, 3, 12, 24, 57),
    }


def test_call_finished__answered() -> None:
    [a] = parse("call_finished__answered")
    f = a.fields
    assert (f["answered"], f["ended"], f["duration"], f["wait_seconds"]) == (True, True, 198, 57)
    assert (f["employee"], f["total_seconds"], f["direction"]) == ("Смирнова Ольга", 255, "in")
    assert "uis_tags" not in f  # null in the template


def test_call_finished__outgoing() -> None:
    with pytest.raises(IgnoredEvent):
        parse("call_finished__outgoing")


def test_recorded_call__file_link() -> None:
    [a] = parse("recorded_call__file_link")
    assert a.fields["recording"] == {
        "kind": "url",
        "url": "https://app.uiscom.ru/system/media/talk/2801563201/3c9a4f2b1d/",
    }
    assert (a.fields["recording_seconds"], a.fields["answered"]) == (198, True)


def test_lost_call__no_answer() -> None:
    [a] = parse("lost_call__no_answer")
    assert (a.external_id, a.author.phone) == ("2801570001", "+78432123456")
    f = a.fields
    assert (f["answered"], f["ended"], f["wait_seconds"], f["line"]) == (
        False, True, 48, "+74957654321",
    )  # fmt: skip
    assert "contact_name" not in f


def test_the_source_timezone_reads_the_notification_time() -> None:
    [a] = parse("lost_call__no_answer", timezone="Asia/Yekaterinburg")
    assert a.fields["at"] == msk(2024, 6, 3, 16, 47, 3)


class TestVerify:
    def verify(self, path: str, query: dict, remote: str = "10.0.0.1", **config: object):
        request = InboundRequest(
            method="POST",
            path=path,
            headers={},
            query=query,
            body=fixture_bytes("uis", "call_finished__answered"),
            content_type="application/json",
            remote_addr=remote,
        )
        cfg = SourceConfig("uis", "retail", config, {"secret": SECRET})
        return get_connector("uis").verify(request, cfg)

    def test_the_event_comes_from_the_url_and_the_key_from_the_session(self) -> None:
        v = self.verify("/hooks/uis/retail/call_finished", {"secret": SECRET})
        assert (v.event_type, v.external_id) == ("call_finished", f"call_finished:{SESSION}")

    def test_a_wrong_or_missing_secret_is_refused(self) -> None:
        for query in ({"secret": "guess"}, {}):
            with pytest.raises(Rejected) as exc:
                self.verify("/hooks/uis/retail/call_finished", query)
            assert exc.value.status == 403

    def test_allowed_ips_pins_the_senders(self) -> None:
        ok = self.verify("/hooks/uis/retail/x", {"secret": SECRET}, allowed_ips=["10.0.0.0/24"])
        assert ok.event_type == "x"
        with pytest.raises(Rejected, match="allowed_ips"):
            self.verify(
                "/hooks/uis/retail/x", {"secret": SECRET}, "10.9.9.9", allowed_ips=["10.0.0.0/24"]
            )

    def test_an_unnamed_event_is_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify("/hooks/uis/retail", {"secret": SECRET})
        assert exc.value.status == 404


@pytest.fixture
def pbx(env, monkeypatch) -> Iterator[tuple[FakePbx, str]]:
    monkeypatch.setenv("CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS", "true")
    fake = FakePbx()
    with serve(fake.app) as url:
        yield fake, url


def test_notifications_out_of_order_and_twice_make_one_call_with_its_recording(engine, pbx):
    fake, pbx_url = pbx
    rec = fake.add("talk-2801563201.mp3", kind="mp3", size=150_000)
    source(engine, "uis", "retail", {"recording_hosts": ["127.0.0.1"]}, {"secret": SECRET})
    recorded = {**values("recorded_call__file_link"),
                "file_link": f"{pbx_url}/redirect/talk-2801563201.mp3"}  # fmt: skip
    with hub_server(engine) as hub:
        base = f"{hub}/hooks/uis/retail"
        posts = [("recorded_call", recorded), ("call_finished", values("call_finished__answered")),
                 ("incoming_call", values("incoming_call__virtual_number")),
                 ("recorded_call", recorded)]  # fmt: skip
        for event, body in posts:
            assert uis_post(base, event, body, secret=SECRET).status_code == 200
        assert (
            uis_post(base, "lost_call", values("lost_call__no_answer"), secret="x").status_code
            == 403
        )
        drain_until(engine, lambda: calls_of(engine)[0].recording_state == "stored")
    assert count(engine, RawEvent) == 3
    assert count(engine, RejectedRequest) == 1
    [a] = appeals(engine)
    f = a.fields
    assert (a.external_id, a.author_phone, a.author_name) == (
        SESSION,
        "+79161234567",
        "Иван Петров",
    )
    assert (f["answered"], f["duration"], f["scenario"], f["line"]) == (
        True, 198, "Розница — основной", "+74951234567",
    )  # fmt: skip
    assert f["started_at"] == msk(2024, 6, 3, 12, 24, 57)
    [call] = calls_of(engine)
    assert (call.recording_sha, call.recording_size) == (rec.digest(), rec.size)


def test_a_recording_from_a_host_the_source_did_not_name_is_refused(engine, pbx):
    fake, pbx_url = pbx
    fake.add("talk.mp3")
    source(engine, "uis", "retail", {}, {"secret": SECRET})  # default hosts: UIS's own domains
    body = {**values("recorded_call__file_link"), "file_link": f"{pbx_url}/media/talk.mp3"}
    with hub_server(engine) as hub:
        assert uis_post(f"{hub}/hooks/uis/retail", "recorded_call", body, secret=SECRET).is_success
        drain_until(
            engine, lambda: calls_of(engine) and calls_of(engine)[0].recording_state == "refused"
        )
    [call] = calls_of(engine)
    assert "127.0.0.1" in (call.recording_error or "") and "recording_hosts" in call.recording_error
    assert fake.recordings["talk.mp3"].hits == 0
