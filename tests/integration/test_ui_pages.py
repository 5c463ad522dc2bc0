"""Appeals list and page, queue, channels, audit, dashboard, users, languages: real HTTP, both
backends."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from hub import queue as job_queue
from hub.db import session_scope
from hub.demo_generate import generate
from hub.models import Appeal, DailyRollup, Job, RateBucket, RawEvent
from hub.settings import Settings
from hub.storage import dashboard as dash
from hub.storage import rulesets
from hub.storage import sources as sources_store
from hub.timeutil import utcnow
from hub.ui.labels import crm_link
from tests.conftest import LiveServer
from tests.helpers import count
from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures
from tests.ui.helpers import add_appeal, login


class TestAppealList:
    def test_filters_pages_and_search(self, ui_server: LiveServer, ui_engine: Engine) -> None:
        ids = [add_appeal(ui_engine, text=f"Вопрос номер {i} про парковку") for i in range(60)]
        special = add_appeal(
            ui_engine, channel="tilda", source="site", kind="form", author_phone="+79031234567",
            text="ПЛЕСЕНЬ в хлебе, магазин №1001",
        )  # fmt: skip
        client = login(ui_server, "reviewer")
        first = client.get("/ui/appeals")
        assert f"#{special}<" in first.text and f"#{ids[-1]}<" in first.text
        cursor = first.text.split("cursor=")[1].split('"')[0]
        more = client.get(f"/ui/appeals?cursor={cursor}", headers={"HX-Request": "true"})
        assert more.status_code == 200 and "<html" not in more.text
        assert f"#{ids[0]}<" in more.text and f"#{ids[-1]}<" not in more.text
        only_forms = client.get("/ui/appeals", params={"channel": "tilda"}).text
        assert f"#{special}<" in only_forms and f"#{ids[0]}<" not in only_forms
        for needle in ("плесень", "Плесень", "8 903 123-45-67"):
            found = client.get("/ui/appeals", params={"search": needle}).text
            assert f"#{special}<" in found and f"#{ids[0]}<" not in found, needle
        hr = client.get("/ui/appeals", params={"department": "hr"}).text
        assert f"#{special}<" not in hr
        old = client.get("/ui/appeals", params={"since": "2020-01-01", "until": "2020-01-02"})
        assert "Ничего не найдено" in old.text

    def test_appeal_page_shows_raw_event_trace_and_history(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        generate(ui_engine, 60, months=1, seed=3)
        with session_scope(ui_engine, read_only=True) as s:
            appeal, job = s.execute(
                select(Appeal, Job)
                .join(Job, Job.appeal_id == Appeal.id)
                .where(Appeal.state == "answered", Job.kind == "deliver.appeal")
                .limit(1)
            ).one()  # the generator gives recent answered appeals their delivery job
        client = login(ui_server, "reviewer")
        page = client.get(f"/ui/appeals/{appeal.id}").text
        assert f'"external_id": "demo-{appeal.id}"' not in page  # the raw body, pretty-printed:
        assert f"demo-{appeal.id}" in page.split('id="raw-event"')[1]
        trace = page.split('id="trace"')[1].split("</section>")[0]
        assert appeal.trace[0]["message"] in trace
        history = page.split('id="history"')[1].split("</table>")[0]
        assert f"<code>deliver.appeal</code> #{job.id}<" in history
        assert client.get("/ui/appeals/999999").status_code == 404

    def test_deal_link_points_at_the_portal(self) -> None:
        settings = Settings(b24_webhook_url="https://shop.bitrix24.ru/rest/1/abc/")
        assert crm_link(settings, "lead", 7) == "https://shop.bitrix24.ru/crm/lead/details/7/"
        assert crm_link(Settings(sandbox_enabled=False), "deal", 7) is None
        # The mounted sandbox has no CRM pages: its deals are shown by the admin UI.
        assert crm_link(Settings(sandbox_enabled=True), "deal", 7) == "/ui/sandbox/deals/7"


class TestRules:
    def test_diff_between_versions_that_are_not_neighbours(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        with session_scope(ui_engine) as s:
            first, files = rulesets.export_files(session=s)
            two = {**files, "topics.yaml": files["topics.yaml"] + "\n# правка второй версии\n"}
            three = {**two, "regions.yaml": two["regions.yaml"] + "\n# правка третьей версии\n"}
            second = rulesets.import_draft(session=s, files=two, created_by="t").id
            third = rulesets.import_draft(session=s, files=three, created_by="t").id
        client = login(ui_server, "reviewer")
        page = client.get("/ui/rules/diff", params={"a": first, "b": third}).text
        assert "<h3>topics.yaml</h3>" in page and "<h3>regions.yaml</h3>" in page
        assert '<span class="add">+# правка второй версии</span>' in page
        assert '<span class="add">+# правка третьей версии</span>' in page
        assert f"v{first}/topics.yaml" in page and f"v{third}/regions.yaml" in page
        near = client.get("/ui/rules/diff", params={"a": second, "b": third}).text
        assert "правка второй версии" not in near and "<h3>topics.yaml</h3>" not in near
        back = client.get("/ui/rules/diff", params={"a": third, "b": first}).text
        assert '<span class="del">-# правка третьей версии</span>' in back


class TestQueue:
    def test_dead_letters_retry_one_and_all(self, ui_server: LiveServer, ui_engine: Engine) -> None:
        with session_scope(ui_engine) as s:
            for i in range(3):
                job_queue.enqueue(s, "deliver.appeal", f"appeal:{900 + i}", {"appeal_id": 900 + i})
            s.execute(
                update(Job).values(state="dead", last_error="Bitrix24 недоступен: ReadTimeout")
            )
            s.add(RateBucket(name="b24:shop.bitrix24.ru", level=40.0, updated_at=utcnow()))
        client = login(ui_server, "operator")
        page = client.get("/ui/queue").text
        assert page.count("Bitrix24 недоступен: ReadTimeout") == 3
        assert "b24:shop.bitrix24.ru" in page and "<progress" in page
        with session_scope(ui_engine, read_only=True) as s:
            one = s.execute(select(func.min(Job.id))).scalar_one()
        r = client.post("/ui/queue/retry", data={"csrf_token": client.csrf, "job_id": one})  # type: ignore[attr-defined]
        assert r.status_code == 303 and r.headers["location"].endswith("retried:1")
        assert count(ui_engine, Job, Job.state == "dead") == 2
        r = client.post("/ui/queue/retry", data={"csrf_token": client.csrf})  # type: ignore[attr-defined]
        assert r.headers["location"].endswith("retried:2")
        assert count(ui_engine, Job, Job.state == "queued") == 3

    def test_counts_stay_bounded_and_every_state_can_be_listed(
        self, ui_server: LiveServer, ui_engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from hub.storage import ui_queries

        monkeypatch.setattr(ui_queries, "DONE_CAP", 5)  # the server runs in this process
        with session_scope(ui_engine) as s:
            for i in range(9):
                job_queue.enqueue(s, "deliver.appeal", f"appeal:{i}", {"appeal_id": i})
            job_queue.enqueue(s, "reply.send", "reply:1", {"reply_id": 1})
            s.execute(update(Job).where(Job.kind == "deliver.appeal").values(state="done"))
            s.execute(update(Job).where(Job.key == "appeal:8").values(state="dead"))
        client = login(ui_server, "operator")
        page = client.get("/ui/queue").text
        counts = page.split('id="job-counts"')[1].split("</table>")[0]
        row = counts.split("<code>deliver.appeal</code>")[1].split("</tr>")[0]
        cells = [c.split(">")[-1] for c in row.split("</a>")[:-1]]
        assert cells == ["0", "0", "1", "больше 5"]  # queued, running, dead, done (8 > cap)
        assert "<code>reply.send</code>" in counts
        every = client.get("/ui/queue", params={"state": "all"}).text
        assert 'value="all" selected' in every
        assert every.count('<tr data-job="') == 10
        done = client.get("/ui/queue", params={"state": "done"}).text
        assert done.count('<tr data-job="') == 8


class TestChannels:
    def test_secrets_are_masked_and_the_test_button_answers(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        secret = "s3cret-token-value-0123456789"
        with session_scope(ui_engine) as s:
            sources_store.upsert(s, channel="tilda", source="landing", secrets={"token": secret})
        client = login(ui_server, "operator")
        page = client.get("/ui/channels").text
        assert secret not in page and "s3cr…6789" in page
        assert "/hooks/tilda/landing" in page
        with session_scope(ui_engine, read_only=True) as s:
            row = next(r for r in sources_store.list_all(s) if r.source == "landing")
        r = client.post(f"/ui/channels/{row.id}/test", headers={"X-CSRF-Token": client.csrf})  # type: ignore[attr-defined]
        assert r.status_code == 200 and "расшифровываются" in r.text and "✘" not in r.text

    def test_unsupported_events_and_the_last_event_per_source(self, ui_engine: Engine) -> None:
        from hub.storage import ui_queries, unsupported_events

        with session_scope(ui_engine) as s:
            for i, (state, kind) in enumerate(
                [("unsupported", "wall_reply_edit"), ("parsed", "message_new"),
                 ("unsupported", "wall_reply_edit"), ("unsupported", "group_join")]
            ):  # fmt: skip
                s.add(RawEvent(channel="vk", source="club1", external_id=str(i), body=b"{}",
                               event_type=kind, state=state))  # fmt: skip
            src = sources_store.upsert(s, channel="vk", source="club1", secrets={})
        with session_scope(ui_engine, read_only=True) as s:
            rows = unsupported_events.summary(s)
            health = ui_queries.source_health(s, [src])
        assert [(r.event_type, r.count) for r in rows] == [
            ("group_join", 1),
            ("wall_reply_edit", 2),
        ]
        assert health[src.id].last_event_state == "unsupported"  # type: ignore[index]


class TestAudit:
    def test_changes_show_before_and_after(self, ui_server: LiveServer) -> None:
        admin = login(ui_server, "admin")
        admin.post(
            "/ui/users",
            data={"csrf_token": admin.csrf, "login": "olga", "role": "reviewer",  # type: ignore[attr-defined]
                  "password": "long-enough-1"},
        )  # fmt: skip
        page = login(ui_server, "reviewer").get("/ui/audit", params={"object_type": "user"}).text
        assert (
            "user.add" in page and '<span class="add">+  &#34;role&#34;: &#34;reviewer&#34;' in page
        )


class TestUsers:
    def test_the_last_admin_stays(self, ui_server: LiveServer, ui_engine: Engine) -> None:
        admin = login(ui_server, "admin")
        page = admin.get("/ui/users").text
        admin_id = page.split('data-user="admin"')[1].split('id="user-')[1].split('"')[0]
        r = admin.post(
            f"/ui/users/{admin_id}",
            data={"csrf_token": admin.csrf, "role": "reviewer"},  # type: ignore[attr-defined]
        )
        assert "error=" in r.headers["location"]
        assert admin.get("/ui/users").status_code == 200  # still an admin

    def test_english_is_available_per_user(self, ui_server: LiveServer) -> None:
        client = login(ui_server, "reviewer")
        assert "Обращения" in client.get("/ui/appeals").text
        r = client.post(
            "/ui/language",
            data={"csrf_token": client.csrf, "language": "en"},  # type: ignore[attr-defined]
            headers={"Referer": "/ui/appeals"},
        )
        assert r.status_code == 303
        page = client.get("/ui/appeals").text
        assert "<h1>Appeals</h1>" in page and 'lang="en"' in page
        assert "Обращения" in login(ui_server, "operator").get("/ui/queue").text  # others stay

    def test_an_english_user_gets_english_errors(self, ui_server: LiveServer) -> None:
        admin = login(ui_server, "admin")
        r = admin.post(
            "/ui/language",
            data={"csrf_token": admin.csrf, "language": "en"},  # type: ignore[attr-defined]
            headers={"Referer": "/ui/users"},
        )
        assert r.cookies.get("clienthub_lang") == "en"  # the login form after logout too
        r = admin.post(
            "/ui/users",
            data={"csrf_token": admin.csrf, "login": "olga", "role": "reviewer",  # type: ignore[attr-defined]
                  "password": "short"},
        )  # fmt: skip
        page = admin.get(r.headers["location"]).text
        assert 'role="alert">the password is shorter than 10 characters<' in page
        assert "пароль" not in page
        missing = admin.get("/ui/appeals/999999")
        assert missing.status_code == 404 and "there is no appeal 999999" in missing.text
        assert "<h1>Not found</h1>" in missing.text
        assert admin.get("/api/appeals/999999").headers["content-type"] == "application/json"
        bad = admin.get("/ui/appeals/abc")
        assert bad.status_code == 422 and "invalid value of the field «appeal_id»" in bad.text
        admin.post("/ui/logout", data={"csrf_token": admin.csrf})  # type: ignore[attr-defined]
        assert '<html lang="en"' in admin.get("/ui/login").text
        russian = login(ui_server, "operator")
        assert "обращения 999999 нет" in russian.get("/ui/appeals/999999").text


class TestDashboard:
    def test_figures_match_the_appeals_and_past_days_are_rolled_up(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        generate(ui_engine, 400, months=1, seed=5)
        client = login(ui_server, "reviewer")
        page = client.get("/ui/dashboard", params={"days": 7})
        assert page.status_code == 200
        spec = json.loads(page.text.split('id="chart-channel">')[1].split("</script>")[0])
        shown = Counter()
        for dataset in spec["datasets"]:
            shown[dataset["label"]] = sum(dataset["data"])
        day0 = dash.day_bounds(utcnow().astimezone(dash.ZONE).date() - timedelta(days=6))[0]
        with session_scope(ui_engine, read_only=True) as s:
            rows = s.execute(
                select(Appeal.channel, func.count())
                .where(Appeal.received_at >= day0)
                .group_by(Appeal.channel)
            ).all()
            stored = set(s.execute(select(DailyRollup.day)).scalars())
        assert shown == Counter(dict(rows))
        today = utcnow().astimezone(dash.ZONE).date()
        # login() opened the 30-day view: 29 past days stored; today is computed live, never kept
        assert len(stored) == 29 and today.isoformat() not in stored

    def test_the_leader_rolls_past_days_up_before_anyone_looks(self, ui_engine: Engine) -> None:
        """The scheduler's warm-up computes missing days newest first, a bounded number per
        tick, and leaves nothing for a later view to compute."""
        generate(ui_engine, 300, months=2, seed=7)
        assert dash.warm(ui_engine, days=60, limit=40) == 40
        assert dash.warm(ui_engine, days=60, limit=40) == 20
        assert dash.warm(ui_engine, days=60, limit=40) == 0
        today = utcnow().astimezone(dash.ZONE).date()
        span = [today - timedelta(days=i) for i in range(1, 61)]
        with session_scope(ui_engine, read_only=True) as s:
            found, missing = dash.rollups(s, span)
            assert missing == []
            day = span[3]
            assert found[day] == dash.compute_day(s, day)

    def test_spam_contests_and_the_blacklist_are_counted_by_filter(
        self, ui_server: LiveServer, ui_engine: Engine
    ) -> None:
        spam = "Заработок в интернете на дому, пишите"
        for text in (spam, spam, "Участвую в конкурсе!"):
            add_appeal(ui_engine, text=text, kind="comment", received_at=utcnow())
        add_appeal(ui_engine, author_phone="+79000000000", received_at=utcnow())  # blacklisted
        add_appeal(ui_engine, received_at=utcnow())  # not filtered
        # A rollup stored before filters were counted is computed again, not shown without them.
        yesterday = utcnow().astimezone(dash.ZONE).date() - timedelta(days=1)
        add_appeal(ui_engine, text=spam, received_at=dash.day_bounds(yesterday)[0])
        with session_scope(ui_engine) as s:
            s.add(DailyRollup(day=yesterday.isoformat(), data={"counts": {}}, computed_at=utcnow()))
        page = login(ui_server, "reviewer").get("/ui/dashboard", params={"days": 7}).text
        table = page.split('id="filtered-by">')[1].split("</table>")[0]
        shown = {
            row.split('"')[1]: row.split('class="num">')[1].split("<")[0]
            for row in table.split("<tr data-filter=")[1:]
        }
        assert shown == {"contest": "1", "spam": "3", "blacklist": "1"}, shown
        assert "Спам и реклама" in table and "Отправитель в чёрном списке" in table

    def test_percentiles_from_buckets_are_within_ten_percent(self) -> None:
        values = [5, 10, 20, 40, 60, 120, 300, 600, 1200, 3600]
        hist: Counter[int] = Counter(dash.bucket(v) for v in values)
        assert abs(dash.percentile(hist, 0.5) - 60) / 60 < 0.1  # type: ignore[operator]
        assert abs(dash.percentile(hist, 0.9) - 1200) / 1200 < 0.1  # type: ignore[operator]
        assert dash.percentile(Counter(), 0.5) is None


class TestDemoGenerator:
    def test_rows_are_routed_looking_and_linked(self, ui_engine: Engine) -> None:
        first = generate(ui_engine, 300, months=2, seed=7)
        again = generate(ui_engine, 50, months=2, seed=8)
        assert again == first + 300
        assert count(ui_engine, Appeal) == 350 and count(ui_engine, RawEvent) == 350
        with session_scope(ui_engine, read_only=True) as s:
            states = dict(
                s.execute(select(Appeal.state, func.count()).group_by(Appeal.state)).all()
            )
            sample = s.execute(select(Appeal).where(Appeal.id == first + 10)).scalar_one()
            raw = s.get(RawEvent, sample.raw_event_id)
        assert states.get("answered", 0) > 100 and states.get("filtered", 0) > 0
        assert sample.rules_version == 1 and sample.trace and sample.trace[0]["message"]
        assert raw is not None and raw.external_id == f"demo-{sample.id}"
