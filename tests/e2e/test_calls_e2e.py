"""Hotline calls end to end over real HTTP: the fake Mango PBX posts a call -> ClientHub stores,
merges and routes it by the sample rules (dialled line, menu choice) -> the deal in the sandbox
portal -> the call registered, finished, bound to the deal and its recording attached, on the
application's tokens, exactly once even when a worker is SIGKILLed in between. Also: a recording
arriving after delivery, a 50 MB recording, a missed call's task, blacklisted numbers."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub.bitrix24 import app_setup
from hub.bitrix24 import jobs as b24_jobs
from hub.bitrix24 import telephony as b24_telephony
from hub.bitrix24.client import Bitrix24Client, WebhookAuth
from hub.bitrix24.oauth import parse_install
from hub.bitrix24.ratelimit import MemoryRateLimiter
from hub.bitrix24.sandbox import Portal, create_sandbox_app
from hub.db import session_scope
from hub.fakes.pbx import FakePbx, Recording, mango_post
from hub.fakes.serve import serve
from hub.jobs import job_handlers
from hub.models import Appeal, RuleSetState, RuleSetVersion
from hub.routing import service as routing_service
from hub.routing.compile import compile_files
from hub.routing.engine import CompiledRuleSet
from hub.rules_io import read_dir
from hub.settings import get_settings
from hub.storage import b24_tokens
from hub.timeutil import utcnow
from tests.conftest import LiveServer
from tests.fakes.pbx import appeals, calls_of, drain_until, hub_server, source
from tests.helpers import small_disk

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
KEY, SALT = "e2e-mango-key", "e2e-mango-salt"
LINE = "74955920552"  # store 1002's line in routing_rules/sample/stores.csv (Moscow)
CALLER = "79161234567"


@dataclass
class Hub:
    url: str
    engine: Engine
    portal: Portal
    sandbox: str
    pbx: FakePbx
    pbx_url: str

    def handlers(self) -> dict[str, Any]:
        webhook = Bitrix24Client(
            WebhookAuth(f"{self.sandbox}/rest/1/sandbox/"),
            timeout=10.0,
            limiter=MemoryRateLimiter(1000, 1000),
        )
        app = b24_telephony.make_handler(lambda e: app_setup.app_client(get_settings(), e))
        return {
            **job_handlers(),
            b24_jobs.KIND: b24_jobs.make_handler(lambda _e: webhook, get_settings()),
            b24_telephony.KIND: app,
        }

    def drain(self, done: Any = None) -> None:
        drain_until(self.engine, done or (lambda: True), handlers=self.handlers())

    def post(self, event: str, payload: dict[str, Any]) -> None:
        r = mango_post(f"{self.url}/hooks/mango/hotline", event, payload, key=KEY, salt=SALT)
        assert r.status_code == 200, r.text

    def telephony(self) -> dict[str, Any]:
        return httpx.get(f"{self.sandbox}/_sandbox/telephony").json()

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        rows = httpx.get(f"{self.sandbox}/_sandbox/calls", params={"method": method}).json()
        return [c for c in rows["calls"] if c["status"] == 200]


@functools.cache
def _sample() -> tuple[dict[str, str], CompiledRuleSet]:
    """The sample directory, read and compiled once for the module: parsing 700 stores' YAML is
    the slow part of every test here, and the files never change."""
    files = read_dir(SAMPLE)
    return files, compile_files(files, version=1)


@pytest.fixture(scope="module")
def seeded_portal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox portal file seeded from the sample once; each test works on a copy."""
    path = tmp_path_factory.mktemp("portal") / "seeded.db"
    Portal(path, seed_dir=SAMPLE, rate=None).store.close()
    return path


@pytest.fixture
def hub(engine, tmp_path, monkeypatch, seeded_portal) -> Iterator[Hub]:
    files, compiled = _sample()
    with session_scope(engine) as s:
        version = RuleSetVersion(
            state=RuleSetState.published, files=files, checksum=compiled.checksum,
            created_by="e2e", published_by="e2e", published_at=utcnow(),
        )  # fmt: skip
        s.add(version)
        s.flush()
        version_id = version.id
    routing_service.invalidate_cache()
    routing_service._compiled[version_id] = compiled  # the same files: the same compiled rules
    shutil.copyfile(seeded_portal, tmp_path / "portal.db")
    sandbox = create_sandbox_app(tmp_path / "portal.db", seed_dir=SAMPLE, rate=None)
    pbx = FakePbx(mango_key=KEY, mango_salt=SALT)
    with LiveServer(sandbox) as portal, serve(pbx.app) as pbx_url:
        monkeypatch.setenv("CLIENTHUB_SANDBOX_ENABLED", "true")
        monkeypatch.setenv("CLIENTHUB_SANDBOX_URL", portal.url)
        monkeypatch.setenv("CLIENTHUB_RECORDING_ALLOW_PRIVATE_HOSTS", "true")
        get_settings.cache_clear()
        _install_app(engine, portal.url)
        lines = {LINE: {"name": "Розница"}, "74994509495": {"name": "Профи", "callback_task": True}}
        source(engine, "mango", "hotline", {"api_url": f"{pbx_url}/vpbx", "lines": lines},
               {"key": KEY, "salt": SALT})  # fmt: skip
        with hub_server(engine) as url:
            yield Hub(url, engine, sandbox.state.portal, portal.url, pbx, pbx_url)
    routing_service.invalidate_cache()


def _install_app(engine: Engine, sandbox_url: str) -> None:
    """The sandbox's built-in local application, installed: its tokens in b24_portal_tokens."""
    settings = get_settings()
    body = {"client_id": settings.sandbox_app_client_id,
            "client_secret": settings.sandbox_app_client_secret.get_secret_value()}  # fmt: skip
    payload = httpx.post(f"{sandbox_url}/_sandbox/apps", json=body).json()
    with session_scope(engine) as s:
        b24_tokens.save(s, parse_install(payload), settings)


def _call(
    entry: str,
    *,
    answered: bool = True,
    line: str = LINE,
    caller: str = CALLER,
    ivr: str | None = "3",
    rec_id: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """A Mango call as the PBX tells it: leg events, the menu choice, the summary, the record."""
    t = int(time.time()) - 300
    leg = {"entry_id": entry, "call_id": f"{entry}-1", "from": {"number": caller},
           "to": {"number": line, "line_number": line}}  # fmt: skip
    events = [
        ("call", {**leg, "timestamp": t, "seq": 1, "call_state": "Appeared", "location": "ivr"})
    ]
    if ivr:
        events.append(
            ("dtmf", {**leg, "timestamp": t + 5, "seq": 2, "dtmf": ivr, "location": "ivr"})
        )
    if answered:
        to = {"extension": "105", "number": "sip:op105@vpbx.mangosip.ru", "line_number": line}
        events.append(("call", {**leg, "to": to, "timestamp": t + 14, "seq": 3,
                                "call_state": "Connected", "location": "abonent"}))  # fmt: skip
    summary = {"entry_id": entry, "call_direction": 1, "from": {"number": caller},
               "to": {"number": line}, "line_number": line, "create_time": t,
               "talk_time": t + 14 if answered else 0, "end_time": t + 139,
               "entry_result": int(answered), "disconnect_reason": 1110}  # fmt: skip
    events.append(("summary", summary))
    if rec_id:
        events.append(("recording", {"entry_id": entry, "call_id": f"{entry}-1", "seq": 9,
                                     "recording_id": rec_id, "recording_state": "Completed",
                                     "timestamp": t + 140}))  # fmt: skip
    return events


# The heavier scenarios run on SQLite only; the main flow and a crash run on PostgreSQL too.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _appeal(hub: Hub) -> Appeal:
    [a] = appeals(hub.engine)
    return a


def _assert_one_call_in_the_crm(hub: Hub, rec: Recording | None) -> dict[str, Any]:
    a = _appeal(hub)
    assert a.delivery_state == "delivered", a.delivery_error
    [deal] = hub.portal.store.items(2)
    assert (deal["id"], deal["assignedById"]) == (a.crm_entity_id, a.bitrix_user_id)
    assert len(hub.portal.store.items(3)) == 1
    [call] = hub.telephony()["calls"]
    assert call["EXTERNAL_CALL_ID"] == f"clienthub-{a.id}-{a.external_id}"
    assert (call["PORTAL_USER_ID"], call["CRM_ENTITY_TYPE"], call["CRM_ENTITY_ID"]) == (
        a.bitrix_user_id, "CONTACT", a.crm_contact_id,
    )  # fmt: skip
    assert (call["finished"], call["status"], call["duration"]) == (True, "200", 125)
    assert {"entityTypeId": 2, "entityId": deal["id"]} in call["activity"]["bindings"]
    assert len(hub.calls_to("telephony.externalcall.finish")) == 1
    if rec is not None:
        assert (call["record"]["sha256"], call["record"]["size"]) == (rec.digest(), rec.size)
        assert call["records_attached"] == 1
    return call


def test_a_call_becomes_a_routed_deal_with_the_call_and_its_recording(hub: Hub) -> None:
    rec = hub.pbx.add("rec-1", kind="mp3", size=300_000, fail_times=2)
    for event, payload in _call("E2E-1", rec_id="rec-1"):
        hub.post(event, payload)
    hub.drain(lambda: (hub.telephony()["calls"] or [{}])[0].get("record"))
    a = _appeal(hub)
    # The dialled line gave the region (store 1002), the menu choice the topic.
    assert (a.region, a.topic, a.store) == ("moscow", "vacancy", "1002")
    assert a.fields["line_name"] == "Розница"
    call = _assert_one_call_in_the_crm(hub, rec)
    assert call["record"]["via"] == "content"  # small: inline FILE_CONTENT
    assert any(t["step"] == "telephony" for t in a.trace)


@sqlite_only
def test_a_recording_that_comes_after_delivery_is_attached_to_the_same_call(hub: Hub) -> None:
    rec = hub.pbx.add("late", kind="wav", size=120_044)
    events = _call("E2E-2", rec_id="late")
    for event, payload in events[:-1]:
        hub.post(event, payload)
    hub.drain(lambda: hub.telephony()["calls"] and hub.telephony()["calls"][0]["finished"])
    assert "record" not in hub.telephony()["calls"][0] or not hub.telephony()["calls"][0]["record"]
    hub.post(*events[-1])
    hub.drain(lambda: hub.telephony()["calls"][0].get("record"))
    _assert_one_call_in_the_crm(hub, rec)
    assert len(hub.calls_to("telephony.externalcall.register")) == 1


@sqlite_only
def test_a_50_mb_recording_streams_in_and_out(hub: Hub) -> None:
    rec = hub.pbx.add("big", kind="wav", size=50 * 1024 * 1024)
    rec.digest()
    tracemalloc.start()
    try:
        for event, payload in _call("E2E-3", rec_id="big"):
            hub.post(event, payload)
        hub.drain(lambda: (hub.telephony()["calls"] or [{}])[0].get("record"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    call = _assert_one_call_in_the_crm(hub, rec)
    assert call["record"]["via"] == "upload"  # over the inline limit: uploadUrl, multipart
    assert peak < 20 * 1024 * 1024, f"peak Python memory {peak / 2**20:.1f} MB"


@sqlite_only
def test_a_missed_call_on_a_callback_line_gets_one_task(hub: Hub) -> None:
    for event, payload in _call("E2E-4", answered=False, line="74994509495", ivr=None):
        hub.post(event, payload)
    hub.drain(lambda: hub.telephony()["tasks"])
    a = _appeal(hub)
    assert (a.fields["missed"], a.fields["line_name"]) == (True, "Профи")
    [call] = hub.telephony()["calls"]
    assert (call["status"], call["duration"]) == ("304", 0)
    [task] = hub.telephony()["tasks"]
    assert task["responsibleId"] == str(a.bitrix_user_id)
    assert f"D_{a.crm_entity_id}" in task["ufCrmTask"] and f"(ClientHub #{a.id})" in task["title"]
    hub.drain()
    assert len(hub.telephony()["tasks"]) == 1


@sqlite_only
def test_blacklisted_numbers_are_stored_as_spam_and_never_reach_staff(hub: Hub) -> None:
    from hub.blacklist import add_phone

    hub.pbx.add("spam-rec")
    for event, payload in _call("E2E-5", caller="79000000000", rec_id="spam-rec"):  # sample list
        hub.post(event, payload)
    hub.drain()
    with session_scope(hub.engine) as s:
        done = add_phone(s, phone="8 (916) 555-44-33", actor="anna", reason="реклама")
    assert done.version_id is not None and not done.already
    for event, payload in _call("E2E-6", caller="79165554433"):
        hub.post(event, payload)
    hub.drain()
    spam = appeals(hub.engine)
    assert [a.state for a in spam] == ["filtered", "filtered"]
    assert all("спам" in a.tags and a.delivery_state == "none" for a in spam)
    assert hub.portal.store.items(2) == [] and hub.telephony()["calls"] == []
    assert hub.pbx.recordings["spam-rec"].hits == 0
    assert [c.recording_state for c in calls_of(hub.engine)] == ["none", "none"]


@sqlite_only
def test_the_deal_card_action_blacklists_the_callers_number(hub: Hub) -> None:
    for event, payload in _call("E2E-7", ivr=None):
        hub.post(event, payload)
    hub.drain(lambda: hub.telephony()["calls"] and hub.telephony()["calls"][0]["finished"])
    deal = _appeal(hub).crm_entity_id
    with session_scope(hub.engine, read_only=True) as s:
        tokens = b24_tokens.load(s, None, get_settings())
    assert tokens is not None
    card = {"DOMAIN": tokens.domain, "APPLICATION_TOKEN": tokens.application_token,
            "AUTH_ID": tokens.access_token, "PLACEMENT": "CRM_DEAL_DETAIL_TOOLBAR",
            "PLACEMENT_OPTIONS": f'{{"ID":"{deal}"}}'}  # fmt: skip
    page = httpx.post(f"{hub.url}/bitrix24/placement/blacklist", data=card, timeout=60)
    assert page.status_code == 200 and "+79161234567" in page.text
    token = page.text.split('name="token" value="')[1].split('"')[0]
    forged = httpx.post(f"{hub.url}/bitrix24/placement/blacklist/add",
                        data={"token": token, "phone": "+79990001122"})  # fmt: skip
    assert forged.status_code == 403
    done = httpx.post(f"{hub.url}/bitrix24/placement/blacklist/add",
                      data={"token": token, "phone": "+79161234567", "reason": "спам"},
                      timeout=60)  # a rule version is validated and published  # fmt: skip
    assert "добавлен в чёрный список" in done.text
    from hub.blacklist import blacklisting_filter

    with session_scope(hub.engine, read_only=True) as s:
        assert blacklisting_filter(s, "+79161234567", channel="mango") == "blacklist"


@sqlite_only
def test_recording_url_mode_lets_the_portal_download_a_signed_link(hub: Hub, monkeypatch) -> None:
    monkeypatch.setenv("CLIENTHUB_RECORDING_DELIVERY", "url")
    monkeypatch.setenv("CLIENTHUB_PUBLIC_URL", hub.url)
    get_settings.cache_clear()
    httpx.post(f"{hub.sandbox}/_sandbox/telephony", json={"allow_private_record_urls": True})
    rec = hub.pbx.add("by-url", kind="mp3", size=90_000)
    for event, payload in _call("E2E-8", rec_id="by-url"):
        hub.post(event, payload)
    hub.drain(lambda: (hub.telephony()["calls"] or [{}])[0].get("record"))
    call = _assert_one_call_in_the_crm(hub, rec)
    assert call["record"]["via"] == "url"
    [attach] = hub.calls_to("telephony.externalcall.attachrecord")
    link = attach["params"]["RECORD_URL"]
    assert httpx.get(link).status_code == 200
    assert httpx.get(link.replace("sig=", "sig=0")).status_code == 403


class TestAddToFilters:
    """The blacklist edit keeps the admins' file as it is, but for the one list it extends."""

    def test_flow_list_of_the_sample(self) -> None:
        from hub.blacklist import add_to_filters

        sample = (SAMPLE / "filters.yaml").read_text(encoding="utf-8")
        fid, text = add_to_filters(sample, "+79161112233")
        assert fid == "blacklist" and text is not None
        changed = [
            (a, b) for a, b in zip(sample.splitlines(), text.splitlines(), strict=True) if a != b
        ]
        assert changed == [
            (
                '    phones: ["+7 (900) 000-00-00", "8 999 111-22-33"]',
                '    phones: ["+7 (900) 000-00-00", "8 999 111-22-33", "+79161112233"]',
            )
        ]
        assert add_to_filters(text, "+79161112233") == ("blacklist", None)

    def test_block_list_keeps_comments_and_the_unrestricted_filter_wins(self) -> None:
        from hub.blacklist import add_to_filters

        src = (
            "filters:\n  - id: vk\n    reason: r\n    channel: [vk]\n    phones: []\n"
            '  - id: all\n    reason: r\n    phones:\n      - "8 999 111-22-33"  # old\n'
        )
        fid, text = add_to_filters(src, "+79161112233")
        assert fid == "all"
        assert text is not None and text.endswith(
            '      - "8 999 111-22-33"  # old\n      - "+79161112233"\n'
        )

    def test_no_phone_list_adds_a_filter_with_a_free_id(self) -> None:
        from hub.blacklist import add_to_filters
        from hub.routing.compile import check_files

        src = "filters:\n  - id: blacklist\n    reason: r\n    words: [x]\n"
        fid, text = add_to_filters(src, "+79161112233")
        assert fid == "blacklist1" and text is not None
        files, _ = _sample()
        _model, problems = check_files({**files, "filters.yaml": text})
        assert problems.errors == []


# -- SIGKILL -------------------------------------------------------------------------------------
def _worker_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.startswith("CLIENTHUB_") or k in {"PATH", "HOME"}
    }
    env.update(CLIENTHUB_DATABASE_URL=db_url, CLIENTHUB_LOG_JSON="true", **extra)
    return env


@pytest.mark.parametrize(
    ("point", "db_url"),
    [("deliver.appeal:after_batch", "sqlite"), ("telephony.call:after_register", "sqlite"),
     ("telephony.call:after_finish", "sqlite"), ("telephony.call:after_finish", "postgresql")],
    indirect=["db_url"],
)  # fmt: skip
def test_a_worker_killed_midway_still_gives_one_deal_one_call_one_recording(
    hub: Hub, env: str, point: str
) -> None:
    """Intake, routing and the download run here; a worker process takes the delivery and is
    killed at ``point``: after the portal did something and before ClientHub recorded it."""
    rec = hub.pbx.add("killed", kind="mp3", size=200_000)
    for event, payload in _call("E2E-9", rec_id="killed"):
        hub.post(event, payload)
    later = {b24_jobs.KIND, b24_telephony.KIND}
    intake = {k: h for k, h in hub.handlers().items() if k not in later}
    drain_until(hub.engine, lambda: calls_of(hub.engine)[0].recording_state == "stored",
                handlers=intake)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--no-scheduler"],
        env=_worker_env(env, CLIENTHUB_FAULT_KILL_AT=point, CLIENTHUB_JOB_LEASE_SECONDS="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    done = {"deliver.appeal:after_batch": 0, "telephony.call:after_register": 1}.get(point, 2)
    assert len(hub.calls_to("telephony.externalcall.register")) == min(done, 1)
    assert len(hub.calls_to("telephony.externalcall.finish")) == max(0, done - 1)
    time.sleep(1.2)  # the dead worker's leases run out
    hub.drain(lambda: (hub.telephony()["calls"] or [{}])[0].get("record"))
    _assert_one_call_in_the_crm(hub, rec)
    if point == "telephony.call:after_finish":
        assert hub.calls_to("voximplant.statistic.get"), "the retry looked the call up"


@sqlite_only
def test_a_full_recordings_disk_delays_only_the_recording(hub: Hub) -> None:
    """The recordings directory is full: the call still reaches the CRM at once, the recording
    waits with the reason on the call, and lands once (one attach) when space is back."""
    rec = hub.pbx.add("disk", kind="mp3", size=300_000)
    with small_disk(Path.cwd() / "clienthub-files", 1024) as filler:
        for event, payload in _call("E2E-DISK", rec_id="disk"):
            hub.post(event, payload)
        hub.drain(
            lambda: (
                calls_of(hub.engine)[0].recording_error is not None
                and hub.telephony()["calls"]
                and hub.telephony()["calls"][0]["finished"]
            )
        )
        [call] = calls_of(hub.engine)
        assert call.recording_state == "pending"
        assert "No space left on device" in call.recording_error
        _assert_one_call_in_the_crm(hub, None)
        assert not hub.telephony()["calls"][0].get("record")
        assert not list(Path(filler).parent.glob(".tmp-*")), "a half-written temporary file stayed"
        filler.unlink()  # an admin frees space
        hub.drain(lambda: (hub.telephony()["calls"] or [{}])[0].get("record"))
        [call] = calls_of(hub.engine)
        assert (call.recording_state, call.recording_error) == ("stored", None)
        _assert_one_call_in_the_crm(hub, rec)
