"""Operations endpoints and the JSON API."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from hub.db import session_scope


def test_healthz_readyz_and_metrics(live_server, engine):
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    httpx.post(f"{live_server.url}/hooks/form/site", data={"message": "Добрый день"})
    httpx.post(f"{live_server.url}/hooks/nope/site", data={"message": "x"})
    metrics = httpx.get(f"{live_server.url}/metrics").text
    assert 'clienthub_ingested_total{channel="form"}' in metrics
    assert 'clienthub_rejected_total{status="404"}' in metrics
    assert 'clienthub_jobs{kind="parse.event",state="queued"} 1.0' in metrics


def test_readyz_reports_pending_migrations(live_server, engine):
    with session_scope(engine) as s:
        s.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    r = httpx.get(f"{live_server.url}/readyz")
    assert r.status_code == 503
    assert "migrations at 0000" in r.json()["reason"]


def test_api_lists_appeals_with_keyset_pagination(live_server, engine):
    from tests.helpers import api_headers, drain

    for i in range(5):
        httpx.post(f"{live_server.url}/hooks/form/site", data={"message": f"Вопрос {i}"})
    drain(engine)
    auth = api_headers(engine, "reviewer")
    page1 = httpx.get(f"{live_server.url}/api/appeals", params={"limit": 3}, headers=auth).json()
    assert [a["text"] for a in page1["items"]] == ["Вопрос 4", "Вопрос 3", "Вопрос 2"]
    page2 = httpx.get(
        f"{live_server.url}/api/appeals",
        params={"limit": 3, "before_id": page1["next_before_id"]},
        headers=auth,
    ).json()
    assert [a["text"] for a in page2["items"]] == ["Вопрос 1", "Вопрос 0"]
    assert page2["next_before_id"] is None
    assert httpx.get(f"{live_server.url}/api/appeals/999999", headers=auth).status_code == 404


def test_api_needs_a_token_and_the_role(live_server, engine):
    from tests.helpers import api_headers

    anonymous = httpx.get(f"{live_server.url}/api/appeals")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "clienthub users token" in anonymous.json()["detail"]
    wrong = httpx.get(f"{live_server.url}/api/appeals", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    editor = api_headers(engine, "editor")  # edits rules, may not read appeals
    r = httpx.get(f"{live_server.url}/api/appeals", headers=editor)
    assert r.status_code == 403 and "appeals.read" in r.json()["detail"]
    assert httpx.get(
        f"{live_server.url}/api/jobs", headers=api_headers(engine, "operator")
    ).is_success
