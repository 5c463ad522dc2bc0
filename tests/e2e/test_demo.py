"""`clienthub demo` against a real `clienthub run` (SQLite, the built-in sandbox portal, nothing
configured: a fresh machine following the README), both as subprocesses in a temp directory.
Checked from ClientHub's database and the sandbox portal, not from the demo's own printout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.models import Appeal, AuditEntry, ChannelSource, PollerCursor, Reply, TelephonyCall
from tests.pg import free_port

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Counter(vk=3, telegram=1, ok=1, form=1, tilda=1, email=2, twogis=1, yandex=1,
                   mango=2, uis=1, cti=1)  # fmt: skip
BLACKLISTED = "+79150001313"


MODULE = [sys.executable, "-m", "hub"]  # the checkout's code, whatever is installed
INSTALLED = [str(Path(sys.executable).parent / "clienthub")]  # the console script, as the README


@dataclass
class Demo:
    url: str
    dir: Path
    env: dict[str, str]
    engine: Engine
    log: Path
    cli: list[str]

    def run(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return self.command(*self.cli, "demo", *args, timeout=timeout)

    def command(self, *argv: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and scripts
            list(argv), cwd=self.dir, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def rows(self, model: Any) -> list[Any]:
        with Session(self.engine) as s:
            order = model.id if "id" in model.model_fields else model.name
            return list(s.execute(select(model).order_by(order)).scalars())

    def rest(self, method: str, **params: Any) -> Any:
        r = httpx.post(f"{self.url}/sandbox/rest/1/sandbox/{method}.json", json=params, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def sandbox(self, path: str) -> Any:
        return httpx.get(f"{self.url}/sandbox/_sandbox/{path}", timeout=30).json()


def _env(port: int, *, checkout: bool = True) -> dict[str, str]:
    """The environment of a fresh shell; ``checkout``: import hub from this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTHUB_")}
    env.pop("PYTHONPATH", None)
    env.update(PYTHONUNBUFFERED="1", CLIENTHUB_PORT=str(port), CLIENTHUB_LOG_JSON="false")
    if checkout:
        env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def running_hub(work: Path, cli: list[str] = MODULE, **settings: str) -> Iterator[Demo]:
    """`clienthub run` in an empty directory: every default (./clienthub.db, the key file, the
    sandbox portal at /sandbox, the sample rules), plus ``settings`` (CLIENTHUB_* names).
    ``cli``: how to call clienthub (INSTALLED: the console script alone, no PYTHONPATH)."""
    port = free_port()
    env = {**_env(port, checkout=cli == MODULE), **settings}
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
            [*cli, "run"], cwd=work, env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, and it is this server (its banner names the port) that answers
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and f"is running: {url}" in log.read_text():
                break
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        engine = create_engine(f"sqlite:///{work / 'clienthub.db'}")
        yield Demo(url, work, env, engine, log, cli)
        engine.dispose()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_hub(tmp_path_factory.mktemp("fresh")) as demo:
        yield demo


@pytest.fixture(scope="module")
def first_run(hub: Demo) -> subprocess.CompletedProcess[str]:
    return hub.run("--timeout", "150")


def _explain(done: subprocess.CompletedProcess[str], hub: Demo) -> str:
    server = hub.log.read_text()[-4000:]
    return f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}\n--- server ---\n{server}"


def test_every_channel_is_stored_routed_and_delivered_and_the_replies_reach_the_platforms(
    hub: Demo, first_run: subprocess.CompletedProcess[str]
) -> None:
    assert first_run.returncode == 0, _explain(first_run, hub)
    appeals = hub.rows(Appeal)
    assert Counter(a.channel for a in appeals) == EXPECTED
    for a in appeals:  # every appeal routed by the published sample, with its trace
        assert a.routed_at is not None and a.rules_version and a.trace, (a.id, a.state)

    # The noise is kept with the reason and never reaches the CRM.
    filtered = {a.channel: a for a in appeals if a.state == "filtered"}
    assert set(filtered) == {"vk", "mango"}
    assert "#семейныйрынокдарит" in filtered["vk"].text
    assert filtered["vk"].trace[0]["rule"] == "contest"
    assert filtered["mango"].author_phone == BLACKLISTED
    assert filtered["mango"].filtered_reason == "Отправитель в чёрном списке"
    assert all(a.crm_entity_id is None for a in filtered.values())
    [audit] = [e for e in hub.rows(AuditEntry) if e.action == "blacklist.add"]
    assert audit.object_id == BLACKLISTED and audit.actor == "clienthub demo"

    # Everything else is a deal (a lead for the supplier) in the sandbox, where routing said.
    delivered = [a for a in appeals if a.state != "filtered"]
    assert len({a.crm_entity_id for a in delivered}) == len(delivered)  # one per dialogue
    for a in delivered:
        entity = 1 if a.crm_entity == "lead" else 2
        item = hub.rest("crm.item.get", entityTypeId=entity, id=a.crm_entity_id)["item"]
        assert item["originId"] == str(a.id)
        assert item["assignedById"] == a.bitrix_user_id
        if a.kind == "call" and a.fields.get("ivr_choice") == "1":  # the topic a rule chose
            assert item["title"].endswith("Зеленоград, Качество товара и санитария")
        if entity == 2:
            assert (item["categoryId"], item["stageId"]) == (
                a.target["pipeline"],
                a.target["stage"],
            )
    assert [a.channel for a in delivered if a.crm_entity == "lead"] == ["tilda"]
    topics = {a.topic for a in delivered}
    regions = {a.region for a in delivered}
    assert len(topics) >= 7 and len(regions) >= 7, (topics, regions)
    reviews = {a.channel: a for a in delivered if a.kind == "review"}
    assert reviews["twogis"].store == "1204" and reviews["twogis"].department == "quality"
    assert reviews["yandex"].store == "1614" and reviews["yandex"].topic == "gratitude"

    # The messenger dialogues have their Open Lines chats, and the operators' answers arrived.
    dialogue = {"telegram": "comment", "ok": "message", "vk": "message"}
    dialogues = {a.channel: a for a in delivered if dialogue.get(a.channel) == a.kind}
    assert all(a.b24_chat_id for a in dialogues.values())
    replies = hub.rows(Reply)
    assert sorted(r.channel for r in replies) == ["ok", "telegram", "vk"]
    for r in replies:
        assert r.state == "sent" and r.platform_message_id, (r.channel, r.state, r.last_error)
        assert r.appeal_id == dialogues[r.channel].id
    answered = {a.id for a in hub.rows(Appeal) if a.state == "answered"}
    assert {r.appeal_id for r in replies} <= answered
    sandbox_chats = {c["chat_id"]: c for c in hub.sandbox("openlines/chats")["chats"]}
    for r in replies:
        out = [m for m in sandbox_chats[r.b24_chat_id]["messages"] if m["direction"] == "out"]
        assert [m["status"] for m in out] == ["delivered"]

    # Calls: registered in Bitrix24 telephony; the Asterisk recording attached, a call-back task.
    calls = {c.channel: c for c in hub.rows(TelephonyCall) if c.steps}
    assert calls["cti"].recording_state == "stored" and calls["cti"].steps["record"]["done"]
    assert calls["uis"].b24_task_id and calls["mango"].steps["finish"] == "done"
    telephony = hub.sandbox("telephony")
    assert len(telephony["calls"]) == 3 and len(telephony["tasks"]) == 1

    # The fakes went with the demo: the polled mailbox is switched off, with no error left.
    sources = {(s.channel, s.source): s for s in hub.rows(ChannelSource)}
    assert not sources[("email", "demo_support")].enabled
    assert all(s.enabled for k, s in sources.items() if k[0] in ("vk", "telegram", "ok"))
    assert [c.last_error for c in hub.rows(PollerCursor)] == [None]
    assert "Готово" in first_run.stdout


def test_a_second_run_adds_new_dialogues_instead_of_colliding(
    hub: Demo, first_run: subprocess.CompletedProcess[str]
) -> None:
    before = hub.rows(Appeal)
    again = hub.run("--timeout", "150")
    assert again.returncode == 0, _explain(again, hub)
    assert "уже в чёрном списке" in again.stdout
    new = [a for a in hub.rows(Appeal) if a.id > max(a.id for a in before)]
    assert Counter(a.channel for a in new) == EXPECTED
    old_deals = {a.crm_entity_id for a in before if a.crm_entity_id}
    assert not old_deals & {a.crm_entity_id for a in new if a.crm_entity_id}
    assert len([r for r in hub.rows(Reply) if r.state == "sent"]) == 6


def test_with_the_cabinets_and_private_recordings_allowed_the_pollers_and_mango_are_used(
    tmp_path: Path,
) -> None:
    """The same demo when the server polls the 2GIS and Yandex cabinets and may download
    recordings from loopback: reviews come from the fake cabinets, the Mango call's recording
    from the fake PBX."""
    switches = {f"CLIENTHUB_{k}": "true" for k in ("TWOGIS_UNOFFICIAL_CABINET_API",
                "YANDEX_UNOFFICIAL_CABINET_API", "RECORDING_ALLOW_PRIVATE_HOSTS")}  # fmt: skip
    with running_hub(tmp_path, **switches) as demo:
        done = demo.run("--timeout", "150")
        assert done.returncode == 0, _explain(done, demo)
        reviews = [a for a in demo.rows(Appeal) if a.kind == "review"]
        assert sorted(a.channel for a in reviews) == ["twogis", "yandex"]
        assert all(a.fields.get("via") != "e-mail" and a.state == "delivered" for a in reviews)
        calls = {c.appeal_id: c for c in demo.rows(TelephonyCall)}
        recorded = [a.channel for a in demo.rows(Appeal) if calls.get(a.id) is not None
                    and calls[a.id].recording_state == "stored"]  # fmt: skip
        assert sorted(recorded) == ["cti", "mango"]
        sources = {(s.channel, s.source): s for s in demo.rows(ChannelSource)}
        assert not any(s.enabled for (ch, _), s in sources.items() if ch in ("twogis", "yandex"))
        assert [c.last_error for c in demo.rows(PollerCursor)] == [None, None, None]


def test_with_nothing_running_it_says_to_start_clienthub_first(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "hub", "demo", "--url", f"http://127.0.0.1:{port}"],
        cwd=tmp_path, env=_env(port), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "clienthub run" in done.stderr and f"127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "clienthub.db").exists()  # nothing was created on the way
