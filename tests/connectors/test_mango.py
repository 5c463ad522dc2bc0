"""Mango Office: one test per recorded event, the signature check, then the fake PBX posting a
whole call over real HTTP — out of order, twice, with a forged event and a recording link that
fails twice — merged into one appeal with its recording (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from connectors import get_connector
from connectors.base import (
    IgnoredEvent,
    InboundRequest,
    RawEventView,
    Rejected,
    SourceConfig,
    UnsupportedEvent,
)
from connectors.mango import EVENT_HANDLERS, recording_link, signature
from hub.fakes.pbx import FakePbx, mango_form, mango_post
from hub.models import RawEvent, RejectedRequest
from tests.connectors.helpers import (
    RECEIVED,
    fixture_bytes,
    fixtures_without_tests,
    handlers_without_fixtures,
)
from tests.fakes.pbx import appeals, calls_of, drain_until, hub_server, source
from tests.helpers import count

KEY, SALT = "mango-api-key", "mango-api-salt"
ENTRY = "MzQ1Mzc1MzUxMzoxNjE="
MISSED = "MzQ1Mzc1MzUxNDoxNjI="
SECRETS = {"key": KEY, "salt": SALT}
RECORDED_AT = 1513707925  # summary__answered's end_time: the fixtures were recorded in 2017
# Posting the recorded (2017) events over HTTP needs a replay window that reaches back to them.
OLD_FIXTURES = {"replay_window_hours": 24 * 365 * 20}


def payload(name: str) -> dict:
    return json.loads(fixture_bytes("mango", name))


def parse(name: str, **config: object) -> list:
    body = urlencode(mango_form(payload(name), KEY, SALT)).encode()
    return get_connector("mango").parse(
        RawEventView(
            id=3,
            channel="mango",
            source="hotline",
            external_id="x",
            event_type=name.split("__")[0],
            headers={},
            content_type="application/x-www-form-urlencoded",
            body=body,
            received_at=RECEIVED,
            source_config=config,
        )
    )


def ts(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    assert fixtures_without_tests("mango", sys.modules[__name__]) == []
    assert handlers_without_fixtures("mango", EVENT_HANDLERS) == []


def test_call__appeared() -> None:
    [a] = parse("call__appeared")
    assert (a.kind, a.external_id, a.thread_key, a.author.phone) == (
        "call", ENTRY, f"call:{ENTRY}", "+79997356761",
    )  # fmt: skip
    assert a.fields == {
        "call_id": ENTRY,
        "event": "call.Appeared",
        "at": ts(1513707786),
        "seq": 1,
        "caller": "+79997356761",
        "line": "+74994509495",
    }
    assert a.received_at == datetime(2017, 12, 19, 18, 23, 6, tzinfo=UTC)


def test_call__connected() -> None:
    [a] = parse("call__connected")
    assert a.fields["answered"] is True
    assert (a.fields["employee"], a.fields["queue"]) == ("105", "101")
    assert a.fields["answered_at"] == ts(1513707800)
    assert "ended" not in a.fields  # a leg connected; the call goes on


def test_call__disconnected() -> None:
    [a] = parse("call__disconnected")
    assert a.fields["hangup_cause"] == "1110"
    assert "answered" not in a.fields and "ended" not in a.fields  # the summary says how it ended


def test_dtmf__ivr() -> None:
    [a] = parse("dtmf__ivr")
    assert a.fields == {
        "call_id": ENTRY, "event": "dtmf", "at": ts(1513707792), "seq": 2, "ivr_choice": "3",
    }  # fmt: skip
    assert a.author.phone is None


def test_summary__answered() -> None:
    [a] = parse("summary__answered")
    assert a.fields == {
        "call_id": ENTRY,
        "event": "summary",
        "at": ts(1513707925),
        "direction": "in",
        "caller": "+79997356761",
        "line": "+74994509495",
        "employee": "105",
        "started_at": ts(1513707786),
        "answered_at": ts(1513707800),
        "ended_at": ts(1513707925),
        "answered": True,
        "ended": True,
        "duration": 125,
        "wait_seconds": 14,
        "hangup_cause": "1110",
        "entry_result": 1,
    }
    assert a.text == (
        "Входящий звонок с номера +79997356761 на линию +74994509495; отвечен (105), "
        "разговор 2 мин 05 с."
    )


def test_summary__missed() -> None:
    [a] = parse("summary__missed")
    assert a.external_id == MISSED
    assert (a.fields["answered"], a.fields["ended"], a.fields["duration"]) == (False, True, 0)
    assert a.fields["wait_seconds"] == 47
    assert "answered_at" not in a.fields and "employee" not in a.fields
    assert a.text.endswith("пропущен, ожидание 47 с.")


def test_summary__outgoing() -> None:
    with pytest.raises(IgnoredEvent, match="outgoing"):
        parse("summary__outgoing")
    [a] = parse("summary__outgoing", include_outgoing=True)
    assert (a.fields["direction"], a.author.phone) == ("out", "+79997356761")


def test_recording__completed() -> None:
    [a] = parse("recording__completed")
    assert a.fields["recording"] == {
        "kind": "mango",
        "recording_id": "MToxMDA3MTYxNToxNjE6cmVjOjE=",
    }


def test_recording__started() -> None:
    [a] = parse("recording__started")
    assert "recording" not in a.fields  # nothing to download yet


def test_sms__unsupported() -> None:
    with pytest.raises(UnsupportedEvent, match="sms"):
        parse("sms__unsupported")


class TestVerify:
    def request(self, event: str = "summary", **form: str) -> InboundRequest:
        values = {**mango_form(payload("summary__answered"), KEY, SALT), **form}
        return InboundRequest(
            method="POST",
            path=f"/hooks/mango/hotline/events/{event}",
            headers={},
            query={},
            body=urlencode(values).encode(),
            content_type="application/x-www-form-urlencoded",
        )

    def verify(self, request: InboundRequest, secrets: dict | None = None, now: float = 0.0):
        cfg = SourceConfig("mango", "hotline", {}, SECRETS if secrets is None else secrets)
        connector = type(get_connector("mango"))()
        # The recorded payloads are of December 2017: verify them at their own time.
        connector.now = lambda: now or RECORDED_AT + 60  # type: ignore[method-assign]
        return connector.verify(request, cfg)

    def test_signed_event_is_accepted_with_an_id_per_event(self) -> None:
        v = self.verify(self.request())
        assert (v.external_id, v.event_type) == (f"summary:{ENTRY}", "summary")

    def test_forged_signature_is_refused(self) -> None:
        forged = mango_form(payload("summary__answered"), KEY, SALT, forge=True)["sign"]
        with pytest.raises(Rejected) as exc:
            self.verify(self.request(sign=forged))
        assert exc.value.status == 403

    def test_json_changed_after_signing_is_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify(self.request(json=json.dumps({**payload("summary__answered"), "x": 1})))
        assert exc.value.status == 403

    def test_another_accounts_key_is_refused(self) -> None:
        other = mango_form(payload("summary__answered"), "other-key", SALT)
        with pytest.raises(Rejected):
            self.verify(self.request(**other))

    def test_a_replayed_old_event_is_refused_with_its_age(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify(self.request(), now=RECORDED_AT + 25 * 3600)
        assert exc.value.status == 403
        assert "25 h old, outside the replay window of 24 h" in exc.value.reason
        assert self.verify(self.request(), now=RECORDED_AT + 23 * 3600).event_type == "summary"

    def test_an_event_from_the_future_is_refused(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify(self.request(), now=RECORDED_AT - 3600)
        assert "in the future" in exc.value.reason

    def test_no_configured_salt_disables_the_source(self) -> None:
        with pytest.raises(Rejected) as exc:
            self.verify(self.request(), {"key": KEY})
        assert exc.value.status == 403

    def test_the_base_url_without_an_event_path_is_404(self) -> None:
        req = self.request()
        bare = InboundRequest("POST", "/hooks/mango/hotline", {}, {}, req.body, req.content_type)
        with pytest.raises(Rejected) as exc:
            self.verify(bare)
        assert exc.value.status == 404

    def test_signature_is_over_the_exact_json_string(self) -> None:
        text = '{"a":1}'
        assert signature("k", text, "s") == __import__("hashlib").sha256(b'k{"a":1}s').hexdigest()


def test_recording_link_is_signed_as_mango_documents() -> None:
    link = recording_link(api_url="https://vpbx.example/vpbx", key="k", salt="s", recording_id="R")
    *_, rec, action, key, expires, sign = link.split("/")
    assert (rec, action, key) == ("R", "download", "k")
    assert sign == __import__("hashlib").sha256(f"k{expires}Rs".encode()).hexdigest()


# --- the whole call over HTTP -------------------------------------------------------------------
@pytest.fixture
def pbx(env, monkeypatch) -> Iterator[tuple[FakePbx, str]]:
    monkeypatch.setenv("CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS", "true")
    fake = FakePbx(mango_key=KEY, mango_salt=SALT)
    from hub.fakes.serve import serve

    with serve(fake.app) as url:
        yield fake, url


def test_a_call_posted_out_of_order_and_twice_is_one_appeal_with_its_recording(engine, pbx):
    fake, pbx_url = pbx
    rec = fake.add("MToxMDA3MTYxNToxNjE6cmVjOjE=", kind="mp3", size=64_000, fail_times=2)
    source(engine, "mango", "hotline", {"api_url": f"{pbx_url}/vpbx", **OLD_FIXTURES}, SECRETS)
    with hub_server(engine) as hub:
        base = f"{hub}/hooks/mango/hotline"
        story = ["recording__completed", "summary__answered", "dtmf__ivr", "call__appeared",
                 "call__connected", "summary__answered", "call__disconnected"]  # fmt: skip
        for name in story:
            r = mango_post(base, name.split("__")[0], payload(name), key=KEY, salt=SALT)
            assert r.status_code == 200, r.text
        forged = mango_post(base, "summary", payload("summary__missed"), key=KEY, salt=SALT,
                            forge=True)  # fmt: skip
        assert forged.status_code == 403
        drain_until(engine, lambda: calls_of(engine)[0].recording_state == "stored")
    assert count(engine, RawEvent) == 6  # the repeated summary was acknowledged, stored once
    assert count(engine, RejectedRequest, RejectedRequest.status_code == 403) == 1
    [a] = appeals(engine)
    assert (a.channel, a.kind, a.external_id, a.author_phone) == (
        "mango", "call", ENTRY, "+79997356761",
    )  # fmt: skip
    f = a.fields
    assert (f["line"], f["ivr_choice"], f["answered"], f["missed"], f["duration"]) == (
        "+74994509495", "3", True, False, 125,
    )  # fmt: skip
    assert f["started_at"] == ts(1513707786) and f["ended_at"] == ts(1513707925)
    assert a.state == "routed"  # routed at the summary, not before
    [call] = calls_of(engine)
    assert len(call.events) == 6
    assert (call.recording_size, call.recording_sha) == (rec.size, rec.digest())
    assert rec.hits == 3  # 503, 503, then the file
    [entry] = [x for x in a.attachments if x.get("role") == "recording"]
    assert entry["name"] == f"call-{a.id}.mp3"
    got = httpx.get(f"{pbx_url}/media/nothing")
    assert got.status_code == 404


def test_a_call_without_an_end_event_waits_then_routes(engine, pbx, monkeypatch):
    monkeypatch.setenv("CLIENTHUB_CALL_SETTLE_SECONDS", "0")
    from hub.settings import get_settings

    get_settings.cache_clear()
    source(engine, "mango", "hotline", OLD_FIXTURES, SECRETS)
    with hub_server(engine) as hub:
        r = mango_post(f"{hub}/hooks/mango/hotline", "call", payload("call__appeared"),
                       key=KEY, salt=SALT)  # fmt: skip
        assert r.status_code == 200
        drain_until(engine, lambda: appeals(engine) and appeals(engine)[0].state != "new")
    [a] = appeals(engine)
    assert a.state == "routed"
    assert a.trace[-1]["step"] == "call" and "не сообщила о завершении" in a.trace[-1]["message"]


def test_rules_route_a_call_by_its_dialled_line_and_menu_choice() -> None:
    """The merged call facts reach the engine: one line per business direction, menu choices."""
    from hub.routing.assign import MemoryAssignmentState
    from hub.telephony import line_settings, merge_facts
    from tests.unit.routing.helpers import WEDNESDAY_11_MSK, appeal, rules

    ruleset = rules(
        """\
  - id: pro-line
    when: {kind: call, fields: {line_name: Профи}}
    then: {department: quality, assign: {pool: quality}, stop: true}
  - id: menu-3-on-the-retail-line
    when: {kind: call, fields: {ivr_choice: "3", line: "8 (499) 450-94-95"}}
    then: {department: hotline, assign: {pool: hotline}, tags: [меню 3], stop: true}
"""
    )
    events = {str(i): parse(n)[0].fields for i, n in enumerate(["summary__answered", "dtmf__ivr"])}
    facts = merge_facts(events)

    def route(config: dict) -> list[str]:
        named = line_settings(config, facts["line"]).get("name")
        fields = {**facts, **({"line_name": named} if named else {})}
        a = appeal(facts["caller"], channel="mango", kind="call", fields=fields)
        decision = ruleset.decide(a, now=WEDNESDAY_11_MSK, state=MemoryAssignmentState())
        return [decision.department or "", *decision.tags]

    assert route({}) == ["hotline", "меню 3"]
    assert route({"lines": {"+7 (499) 450-94-95": {"name": "Профи"}}})[0] == "quality"
