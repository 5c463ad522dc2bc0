"""Reaction-time reports over real HTTP: the JSON the dashboard reads, the CSV export and the
overdue gauge in /metrics, each checked against figures computed here from the test's table."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub.bootstrap import ensure_defaults
from hub.db import session_scope
from hub.http import reaction
from hub.http.app import create_app
from hub.models import Appeal
from hub.routing import service as routing
from hub.settings import get_settings
from hub.storage import users as users_store
from hub.timeutil import utcnow
from hub.ui.security import hash_password, new_token
from tests.conftest import LiveServer
from tests.integration.reaction_helpers import publish
from tests.unit.routing.helpers import files

BASE = utcnow().replace(microsecond=0) - timedelta(days=3)


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


# (channel, department, assignee, received, first reply or None, due or None, state)
APPEALS = [
    ("vk", "hotline", "op1", at(0), at(0.5), at(1), "answered"),
    ("vk", "hotline", "op1", at(1), at(3), at(2), "answered"),  # late
    ("telegram", "hotline", "op2", at(2), at(2.1), at(3), "closed"),
    ("telegram", "quality", "qmsk", at(3), None, at(4), "delivered"),  # overdue now
    ("vk", "quality", "qmsk", at(4), None, at(5), "routed"),  # overdue now
    ("vk", "quality", "qsam", at(5), None, utcnow() + timedelta(hours=5), "delivered"),  # not yet
    ("email", "quality", "qsam", at(6), at(30), None, "answered"),  # no target
    ("vk", "hotline", "op2", at(7), None, at(8), "closed"),  # closed unanswered: missed
    ("vk", "hotline", None, at(8), None, None, "filtered"),  # not counted at all
]


@pytest.fixture
def server(engine: Engine) -> Iterator[tuple[str, dict[str, str]]]:
    """The app with the reaction router (as the lead will mount it) and a logged-in reviewer."""
    routing.invalidate_cache()
    publish(engine, files())
    with session_scope(engine) as s:
        for channel, department, who, received, replied, due, state in APPEALS:
            s.add(
                Appeal(
                    channel=channel, source="x", kind="message", text="…", received_at=received,
                    first_reply_at=replied, reply_due_at=due, state=state,
                    department=department, assignee_id=who, assignee_name=who and who.upper(),
                )
            )  # fmt: skip
        user = users_store.create(
            s, login="rev", password_hash=hash_password("x" * 12), role="reviewer"
        )
        token, token_hash = new_token()
        users_store.open_session(
            s, user=user, token_hash=token_hash, csrf_token="c", ip=None,
            expires_at=utcnow() + timedelta(hours=1),
        )  # fmt: skip
    settings = get_settings()
    ensure_defaults(engine, settings)
    app = create_app(settings, engine)
    app.include_router(reaction.router)
    reaction.register_collector(engine)
    with LiveServer(app) as live:
        yield live.url, {"clienthub_session": token}


def expected(rows: list[tuple]) -> dict[str, object]:
    rows = [r for r in rows if r[6] != "filtered"]
    now = utcnow()
    waits = sorted((r[4] - r[3]) / timedelta(minutes=1) for r in rows if r[4] is not None)
    n = len(waits)
    median = (waits[n // 2] if n % 2 else (waits[n // 2 - 1] + waits[n // 2]) / 2) if n else None
    decided = [r for r in rows if r[5] is not None and (r[4] is not None or r[5] < now)]
    within = [r for r in decided if r[4] is not None and r[4] <= r[5]]
    return {
        "appeals": len(rows),
        "answered": n,
        "median_minutes": None if median is None else round(median, 2),
        "p90_minutes": round(waits[math.ceil(0.9 * n) - 1], 2) if n else None,
        "with_target": len(decided),
        "within_target": len(within),
        "overdue_now": sum(
            1
            for r in rows
            if r[4] is None and r[5] and r[5] < now and r[6] in ("routed", "delivered")
        ),
    }


def test_json_by_department_and_channel(server: tuple[str, dict[str, str]]) -> None:
    url, cookies = server
    period = {"since": (BASE - timedelta(days=1)).isoformat(), "until": utcnow().isoformat()}
    body = httpx.get(f"{url}/api/reaction", params={**period, "by": "department"}, cookies=cookies)
    assert body.status_code == 200, body.text
    data = body.json()
    assert {k: data["total"][k] for k in expected(APPEALS)} == expected(APPEALS)
    lines = {line["key"]: line for line in data["lines"]}
    assert set(lines) == {"hotline", "quality"}
    assert lines["hotline"]["name"] == "Горячая линия"  # from the published directory
    for key, line in lines.items():
        mine = expected([r for r in APPEALS if r[1] == key])
        assert {k: line[k] for k in mine} == mine, key
    assert data["total"]["within_target_share"] == round(2 / 6, 4)  # see the table above

    by_channel = httpx.get(
        f"{url}/api/reaction", params={**period, "by": "channel"}, cookies=cookies
    ).json()
    for line in by_channel["lines"]:
        mine = expected([r for r in APPEALS if r[0] == line["key"]])
        assert {k: line[k] for k in mine} == mine, line["key"]


def test_csv_export(server: tuple[str, dict[str, str]]) -> None:
    url, cookies = server
    params = {"since": (BASE - timedelta(days=1)).isoformat(), "by": "employee"}
    response = httpx.get(f"{url}/api/reaction.csv", params=params, cookies=cookies)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    assert [r["key"] for r in rows] == ["*", "op1", "op2", "qmsk", "qsam"]
    op1 = next(r for r in rows if r["key"] == "op1")
    mine = expected([r for r in APPEALS if r[2] == "op1"])
    assert op1["name"] == "OP1" and op1["appeals"] == str(mine["appeals"])
    assert op1["median_minutes"] == f"{mine['median_minutes']:g}".replace(".", ",")
    assert op1["within_target"] == "1" and op1["with_target"] == "2"


def test_overdue_gauge_in_metrics(server: tuple[str, dict[str, str]]) -> None:
    url, _cookies = server
    text = httpx.get(f"{url}/metrics").text
    assert 'clienthub_appeals_overdue{department="quality"} 2.0' in text
    assert 'department="hotline"' not in text.split("clienthub_appeals_overdue")[-1]


def test_login_and_parameters_are_checked(server: tuple[str, dict[str, str]]) -> None:
    url, cookies = server
    anonymous = httpx.get(f"{url}/api/reaction", follow_redirects=False)
    assert anonymous.status_code == 401  # an API: a JSON answer, not a redirect to the form
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{url}/api/reaction?by=colour", cookies=cookies).status_code == 422
    bad = httpx.get(f"{url}/api/reaction?since=2026-01-01&until=2025-01-01", cookies=cookies)
    assert bad.status_code == 422
    weeks = httpx.get(f"{url}/api/reaction?by=week", cookies=cookies).json()
    assert sum(line["appeals"] for line in weeks["lines"]) == weeks["total"]["appeals"] == 8


def test_report_function_for_the_dashboard(engine: Engine, server: tuple[str, dict]) -> None:
    rep = reaction.report(
        engine, since=BASE - timedelta(days=1), until=utcnow(), by="department", now=utcnow()
    )
    assert rep.total.appeals == 8 and rep.total.overdue_now == 2
    assert rep.as_dict()["lines"][0]["key"] == "hotline"
    assert datetime.fromisoformat(rep.as_dict()["since"]).tzinfo == UTC


def test_dashboard_shows_what_is_overdue(server: tuple[str, dict[str, str]]) -> None:
    url, cookies = server
    page = httpx.get(f"{url}/ui/dashboard", cookies=cookies)
    assert page.status_code == 200 and 'hx-get="/ui/dashboard/overdue' in page.text
    card = httpx.get(f"{url}/ui/dashboard/overdue?since=2026-10-25", cookies=cookies)
    assert card.status_code == 200
    assert ">2<" in card.text and "Качество: 2" in card.text  # the name from the directory
    assert 'href="/api/reaction.csv?by=department&since=2026-10-25"' in card.text
