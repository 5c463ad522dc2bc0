"""The generic CTI endpoint: Zammad's documented events, ClientHub's recording event, the token,
then a PBX script's posts over real HTTP: a call, its recording uploaded as multipart (streamed),
formats refused, and the SSRF guard on recording URLs (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors import get_connector
from connectors.base import (
    IgnoredEvent,
    InboundRequest,
    RawEventView,
    Rejected,
    SourceConfig,
    UnsupportedEvent,
)
from connectors.cti import EVENT_HANDLERS
from hub.db import session_scope
from hub.fakes.pbx import FakePbx, cti_post, cti_upload
from hub.fakes.serve import serve
from hub.models import RawEvent, StoredFile
from hub.telephony import merge_facts
from tests.connectors.helpers import (
    RECEIVED,
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
)
from tests.fakes.pbx import appeals, calls_of, drain_until, hub_server, source
from tests.helpers import count, small_disk

TOKEN = "cti-token-for-asterisk"
ZAMMAD_CALL = "307fa962-de8d-4ffc-817b-7f6993204159"
AT = RECEIVED.isoformat()


def parse(name: str, **config: object) -> list:
    return get_connector("cti").parse(
        RawEventView(
            id=5,
            channel="cti",
            source="asterisk",
            external_id="x",
            event_type=name.split("__")[0],
            headers={},
            content_type="application/json",
            body=fixture_bytes("cti", name),
            received_at=RECEIVED,
            source_config=config,
        )
    )


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    assert fixtures_without_tests("cti", sys.modules[__name__]) == []
    assert handlers_without_fixtures("cti", EVENT_HANDLERS) == []


def test_newCall__inbound() -> None:  # noqa: N802 - the event's own name
    [a] = parse("newCall__inbound")
    assert (a.kind, a.external_id, a.author.phone) == ("call", ZAMMAD_CALL, "+493023125741")
    assert a.fields == {
        "call_id": ZAMMAD_CALL,
        "at": AT,
        "direction": "in",
        "caller": "+493023125741",
        "line": "+492214710334",
        "event": "newCall",
        "started_at": AT,
    }


def test_newCall__outbound() -> None:  # noqa: N802
    with pytest.raises(IgnoredEvent):
        parse("newCall__outbound")
    [a] = parse("newCall__outbound", include_outgoing=True)
    assert (a.author.phone, a.fields["line"], a.fields["direction"]) == (
        "+79161234567", "+74951234567", "out",
    )  # fmt: skip


def test_answer__inbound() -> None:
    [a] = parse("answer__inbound")
    assert (a.fields["answered"], a.fields["employee"]) == (True, "emma@chrispresso.com")


def test_hangup__inbound() -> None:
    [a] = parse("hangup__inbound")
    f = a.fields
    assert (f["ended"], f["answered"], f["hangup_cause"]) == (True, True, "normalClearing")


def test_hangup__no_answer() -> None:
    [a] = parse("hangup__no_answer")
    f = a.fields
    assert (f["ended"], f["answered"], f["hangup_cause"], f["ivr_choice"]) == (
        True, False, "noAnswer", "2",
    )  # fmt: skip
    assert (a.author.phone, f["line"]) == ("+78432123456", "+74951234567")


def test_recording__url() -> None:
    [a] = parse("recording__url")
    assert a.fields["recording"] == {
        "kind": "url",
        "url": f"https://pbx.example.ru/monitor/{ZAMMAD_CALL}.wav",
    }


def test_recording__uploaded_file() -> None:
    [a] = parse("recording__uploaded_file")
    assert a.fields["recording"]["kind"] == "stored"
    assert (a.fields["recording"]["name"], a.fields["recording"]["size"]) == (
        "1717420003.1042.wav", 480044,
    )  # fmt: skip


def test_hold__unsupported() -> None:
    with pytest.raises(UnsupportedEvent):
        parse("hold__unsupported")


def test_zammads_three_events_merge_into_one_answered_call_in_any_order() -> None:
    events = {str(i): parse(n)[0].fields for i, n in
              enumerate(["hangup__inbound", "newCall__inbound", "answer__inbound"])}  # fmt: skip
    merged = merge_facts(events)
    assert (merged["answered"], merged["ended"], merged["missed"]) == (True, True, False)
    assert merged["employee"] == "emma@chrispresso.com"
    assert merge_facts(dict(reversed(events.items()))) == merged


class TestVerify:
    def verify(self, body: bytes, query: dict) -> object:
        request = InboundRequest("POST", "/hooks/cti/asterisk", {}, query, body, "application/json")
        return get_connector("cti").verify(
            request, SourceConfig("cti", "asterisk", {}, {"token": TOKEN})
        )

    def test_the_token_is_required_and_answers_like_zammad(self) -> None:
        v = self.verify(fixture_bytes("cti", "newCall__inbound"), {"token": TOKEN})
        assert (v.external_id, v.response_body) == (f"{ZAMMAD_CALL}:newCall", b"{}")
        with pytest.raises(Rejected) as exc:
            self.verify(fixture_bytes("cti", "newCall__inbound"), {"token": "nope"})
        assert exc.value.status == 403

    def test_events_without_a_call_id_are_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify(b'{"event":"newCall","from":"1"}', {"token": TOKEN})
        assert exc.value.status == 422


# --- a PBX script over HTTP ---------------------------------------------------------------------
@pytest.fixture
def pbx(env, monkeypatch) -> Iterator[tuple[FakePbx, str]]:
    monkeypatch.setenv("CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS", "true")
    fake = FakePbx()
    with serve(fake.app) as url:
        yield fake, url


def _event(name: str, call: str) -> dict:
    return {**json.loads(fixture_bytes("cti", name)), "callId": call}


def test_a_call_with_its_recording_uploaded_by_the_dialplan_script(engine, pbx):
    fake, _ = pbx
    rec = fake.add("upload", kind="wav", size=2_000_044)
    source(engine, "cti", "asterisk", {}, {"token": TOKEN})
    call = "1717420003.1042"
    with hub_server(engine) as hub:
        url = f"{hub}/hooks/cti/asterisk"
        up = f"{hub}/telephony/cti/asterisk/recording"
        assert cti_upload(up, call, rec, token=TOKEN, filename=f"{call}.wav").status_code == 200
        for name in ("newCall__inbound", "answer__inbound", "hangup__inbound", "hangup__inbound"):
            assert cti_post(url, _event(name, call), token=TOKEN).json() == {}
        assert cti_upload(up, call, rec, token="wrong").status_code == 403
        drain_until(engine, lambda: calls_of(engine) and calls_of(engine)[0].ended)
    assert count(engine, RawEvent) == 4  # upload + three events; the repeated hangup once
    [a] = appeals(engine)
    assert (a.external_id, a.fields["answered"], a.fields["missed"]) == (call, True, False)
    [c] = calls_of(engine)
    assert (c.recording_state, c.recording_sha, c.recording_size) == (
        "stored", rec.digest(), rec.size,
    )  # fmt: skip
    with session_scope(engine, read_only=True) as s:
        stored = s.execute(select(StoredFile)).scalar_one()
    assert (stored.name, stored.media_type, stored.channel) == (f"{call}.wav", "audio/wav", "cti")


def test_an_upload_that_is_not_mp3_or_wav_is_refused_with_the_reason(engine, pbx, monkeypatch):
    monkeypatch.setenv("CLIENTHUB_RECORDING_FFMPEG", "")  # no converter on this host
    fake, _ = pbx
    ogg = fake.add("ogg", kind="ogg", size=10_000)
    source(engine, "cti", "asterisk", {}, {"token": TOKEN})
    with hub_server(engine) as hub:
        r = cti_upload(f"{hub}/telephony/cti/asterisk/recording", "c1", ogg, token=TOKEN)
    assert r.status_code == 415
    assert "ffmpeg" in r.json()["error"]
    assert count(engine, RawEvent) == 0
    assert not [p for p in Path("clienthub-files").rglob("*") if p.is_file()]  # nothing kept


def test_a_recording_url_on_a_private_address_is_refused_unless_allowed(engine, pbx, monkeypatch):
    monkeypatch.setenv("CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS", "false")
    fake, pbx_url = pbx
    fake.add("c2.wav", kind="wav", size=5_000)
    source(engine, "cti", "asterisk", {"recording_hosts": ["127.0.0.1"]}, {"token": TOKEN})
    with hub_server(engine) as hub:
        body = {"event": "recording", "callId": "c2", "recording_url": f"{pbx_url}/media/c2.wav"}
        assert cti_post(f"{hub}/hooks/cti/asterisk", body, token=TOKEN).status_code == 200
        drain_until(
            engine, lambda: calls_of(engine) and calls_of(engine)[0].recording_state == "refused"
        )
    [c] = calls_of(engine)
    assert "non-public address 127.0.0.1" in (c.recording_error or "")
    assert fake.recordings["c2.wav"].hits == 0


def test_a_recording_over_the_size_limit_is_refused(engine, pbx, monkeypatch):
    monkeypatch.setenv("CLIENTHUB_RECORDING_MAX_BYTES", "100000")
    fake, pbx_url = pbx
    fake.add("big.wav", kind="wav", size=400_000)
    source(engine, "cti", "asterisk", {"recording_hosts": ["127.0.0.1"]}, {"token": TOKEN})
    with hub_server(engine) as hub:
        body = {"event": "recording", "callId": "c3", "recording_url": f"{pbx_url}/media/big.wav"}
        assert cti_post(f"{hub}/hooks/cti/asterisk", body, token=TOKEN).status_code == 200
        drain_until(
            engine, lambda: calls_of(engine) and calls_of(engine)[0].recording_state == "refused"
        )
    assert "over 100000" in (calls_of(engine)[0].recording_error or "")
    assert not list(Path("clienthub-files").rglob(".tmp-*"))  # the partial file is gone


def test_an_upload_to_a_full_disk_is_not_acknowledged_and_lands_when_space_is_back(engine, pbx):
    """507 with the reason: the PBX keeps the file and sends it again; nothing half-stored."""
    fake, _ = pbx
    rec = fake.add("full", kind="wav", size=300_044)
    source(engine, "cti", "asterisk", {}, {"token": TOKEN})
    with small_disk(Path.cwd() / "clienthub-files", 1024) as filler, hub_server(engine) as hub:
        up = f"{hub}/telephony/cti/asterisk/recording"
        r = cti_upload(up, "c9", rec, token=TOKEN)
        assert r.status_code == 507, r.text
        assert "No space left on device" in r.json()["error"]
        assert count(engine, RawEvent) == 0
        assert not list(filler.parent.rglob(".tmp-*"))
        filler.unlink()
        assert cti_upload(up, "c9", rec, token=TOKEN).status_code == 200
    assert count(engine, RawEvent) == 1
