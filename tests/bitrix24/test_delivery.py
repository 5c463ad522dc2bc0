"""Delivery of appeals into the sandbox portal over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import select

from hub.bitrix24 import plan
from hub.db import session_scope
from hub.models import CrmLink, DeliveryState, Job, JobState
from tests.bitrix24.conftest import add_appeal, get_appeal, worker_for


class TestNewAppeal:
    def test_contact_deal_and_comment_in_two_requests(self, engine, sandbox, client):
        appeal_id = add_appeal(
            engine, attachments=[{"url": "https://vk.com/photo1_2", "name": "фото"}]
        )
        worker_for(engine, client).run_until_idle()

        appeal = get_appeal(engine, appeal_id)
        assert appeal.delivery_state == DeliveryState.delivered
        assert appeal.state == "delivered"
        assert appeal.crm_visible_at is not None
        [contact] = sandbox.items(3)
        [deal] = sandbox.items(2)
        [comment] = sandbox.comments()
        assert (appeal.crm_contact_id, appeal.crm_entity_id) == (contact["id"], deal["id"])
        assert appeal.crm_entity == "deal"
        assert appeal.crm_comment_id == int(comment["ID"])
        assert contact["name"] == "Иван" and contact["lastName"] == "Петров"
        assert contact["fm"][0]["value"] == "+79161234567"
        assert contact["originId"] == "phone:+79161234567"
        assert deal["title"] == "ВК: комментарий — Казань, вакансия"
        assert (deal["categoryId"], deal["stageId"], deal["assignedById"]) == (2, "C2:NEW", 12)
        assert deal["contactId"] == contact["id"]
        assert (deal["originatorId"], deal["originId"]) == ("clienthub", str(appeal_id))
        assert f"https://hub.example/appeals/{appeal_id}" in deal["sourceDescription"]
        assert comment["ENTITY_TYPE"] == "deal" and comment["ENTITY_ID"] == str(deal["id"])
        assert "Есть ли вакансии" in comment["COMMENT"]
        assert "[URL=https://vk.com/photo1_2]фото[/URL]" in comment["COMMENT"]
        assert plan.has_marker(comment["COMMENT"], appeal_id)
        top = sandbox.calls(top=True)
        assert [c["method"] for c in top] == ["batch", "batch"]  # lookup, then creates


def _jobs(engine) -> list[Job]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(Job).order_by(Job.id)).scalars())


class TestContacts:
    def test_existing_contact_is_found_by_phone_not_created(self, engine, sandbox, client):
        existing = client.call(
            "crm.item.add",
            {
                "entityTypeId": 3,
                "fields": {
                    "name": "Иван",
                    "fm": [{"typeId": "PHONE", "valueType": "WORK", "value": "+7 916 123-45-67"}],
                },
            },
        ).result["item"]["id"]
        appeal_id = add_appeal(engine)
        worker_for(engine, client).run_until_idle()
        assert len(sandbox.items(3)) == 1
        [deal] = sandbox.items(2)
        assert deal["contactId"] == existing
        assert get_appeal(engine, appeal_id).crm_contact_id == existing

    def test_platform_id_contact_is_reused_from_the_outbox(self, engine, sandbox, client):
        first = add_appeal(engine, author_phone=None, author_platform_id="id777", thread_key="t1")
        worker_for(engine, client).run_until_idle()
        second = add_appeal(engine, author_phone=None, author_platform_id="id777", thread_key="t2")
        worker_for(engine, client).run_until_idle()
        [contact] = sandbox.items(3)
        assert contact["originId"] == "im:vk:id777"
        [im] = contact["fm"]
        assert (im["typeId"], im["valueType"], im["value"]) == ("IM", "VK", "id777")
        assert len(sandbox.items(2)) == 2
        assert get_appeal(engine, first).crm_contact_id == get_appeal(engine, second).crm_contact_id

    def test_anonymous_appeal_gets_a_deal_without_contact(self, engine, sandbox, client):
        appeal_id = add_appeal(engine, author_phone=None, author_name=None)
        worker_for(engine, client).run_until_idle()
        assert sandbox.items(3) == []
        [deal] = sandbox.items(2)
        assert "contactId" not in deal
        assert get_appeal(engine, appeal_id).delivery_state == DeliveryState.delivered


class TestThreads:
    def test_follow_ups_go_to_the_same_deal_as_new_comments(self, engine, sandbox, client):
        a = add_appeal(engine, thread_key="dialog-1", text="Первое")
        b = add_appeal(engine, thread_key="dialog-1", text="Второе")
        worker_for(engine, client).run_until_idle()  # both in one batch
        c = add_appeal(engine, thread_key="dialog-1", text="Третье")
        worker_for(engine, client).run_until_idle()  # a later run: the outbox knows the deal
        [deal] = sandbox.items(2)
        assert deal["originId"] == str(a)
        assert len(sandbox.items(3)) == 1
        comments = sandbox.comments()
        assert [x["COMMENT"].split("\n")[0] for x in comments] == ["Первое", "Второе", "Третье"]
        assert {get_appeal(engine, i).crm_entity_id for i in (a, b, c)} == {deal["id"]}

    def test_lead_target(self, engine, sandbox, client):
        appeal_id = add_appeal(
            engine,
            target={"entity": "lead", "stage": "NEW"},
            kind="form",
            channel="form",
            source="site",
        )
        worker_for(engine, client).run_until_idle()
        [lead] = sandbox.items(1)
        assert lead["title"] == "Сайт: заявка — Казань, вакансия"
        assert lead["sourceId"] == "WEBFORM"
        [comment] = sandbox.comments()
        assert comment["ENTITY_TYPE"] == "lead"
        assert get_appeal(engine, appeal_id).crm_entity == "lead"

    def test_filtered_appeal_is_not_delivered(self, engine, sandbox, client):
        appeal_id = add_appeal(engine, state="filtered", filtered_reason="спам")
        worker_for(engine, client).run_until_idle()
        assert sandbox.calls() == []
        assert get_appeal(engine, appeal_id).delivery_state == DeliveryState.none
        assert [j.state for j in _jobs(engine)] == [JobState.done]


class TestBatching:
    def test_thirty_appeals_take_four_requests(self, engine, sandbox, client):
        ids = [add_appeal(engine, author_phone=f"+7916000{i:04d}") for i in range(30)]
        worker_for(engine, client).run_until_idle()
        top = sandbox.calls(top=True)
        assert [c["method"] for c in top] == ["batch"] * 4  # 1 lookup + 3 × 12 appeals
        assert sandbox.state() | {"calls": 0} == {
            "leads": 0,
            "deals": 30,
            "contacts": 30,
            "comments": 30,
            "calls": 0,
        }
        assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.delivered}


class TestFailures:
    def test_rate_limit_hit_is_retried_and_nothing_duplicated(self, engine, sandbox):
        from hub.bitrix24.client import RetryPolicy
        from tests.bitrix24.conftest import make_client

        sandbox.faults(rate={"burst": 2, "per_second": 1})
        for i in range(40):
            add_appeal(engine, author_phone=f"+7916100{i:04d}")
        patient = RetryPolicy(attempts=10, base_seconds=0.05, max_delay_seconds=0.5)
        with make_client(sandbox.webhook_url, retry=patient) as client:
            worker_for(engine, client, b24_deliver_claim=12).run_until_idle()
        assert {j.attempts for j in _jobs(engine)} == {1}  # the client absorbed the refusals
        refused = [c for c in sandbox.calls(top=True) if c["error"] == "QUERY_LIMIT_EXCEEDED"]
        assert refused, "the portal's limit was never reached"
        assert sandbox.state()["deals"] == 40
        assert sandbox.state()["comments"] == 40

    def test_portal_down_for_ten_minutes_then_back(self, engine, sandbox, client):
        """The default backoff (2 s, doubling) makes about 9 attempts in 10 minutes; the test
        makes them without waiting (retry delay ~0) while the portal is down."""
        ids = [
            add_appeal(engine, author_phone=f"+7916200{i:04d}", thread_key=f"t{i % 3}")
            for i in range(7)
        ]
        sandbox.faults(outage=True)
        worker = worker_for(engine, client, retry_base_seconds=0.0001)
        for _ in range(9):
            while not worker.run_once():  # wait out the (tiny) backoff
                time.sleep(0.005)
        assert sandbox.state()["deals"] == 0
        assert {j.state for j in _jobs(engine)} == {JobState.queued}
        assert min(j.attempts for j in _jobs(engine)) >= 5  # retried, not dead
        appeal = get_appeal(engine, ids[0])
        assert appeal.delivery_state == DeliveryState.pending and appeal.delivery_error
        sandbox.faults(outage=False)
        worker.run_until_idle()
        assert sandbox.state() | {"calls": 0} == {
            "leads": 0,
            "deals": 3,
            "contacts": 7,
            "comments": 7,
            "calls": 0,
        }
        assert {get_appeal(engine, i).delivery_state for i in ids} == {DeliveryState.delivered}

    def test_half_failed_batch_ends_exactly_once(self, engine, sandbox, client):
        ids = [add_appeal(engine, author_phone=f"+7916300{i:04d}") for i in range(6)]
        sandbox.faults(
            fail_commands=[
                {
                    "method": "crm.item.add",
                    "every": 2,
                    "count": 3,
                    "error": "INTERNAL_SERVER_ERROR",
                },
                {
                    "method": "crm.timeline.comment.add",
                    "every": 3,
                    "count": 1,
                    "error": "ERROR_UNEXPECTED_ANSWER",
                },
            ]
        )
        worker_for(engine, client, retry_base_seconds=0.0001).run_until_idle()
        assert sandbox.state() | {"calls": 0} == {
            "leads": 0,
            "deals": 6,
            "contacts": 6,
            "comments": 6,
            "calls": 0,
        }
        assert max(j.attempts for j in _jobs(engine)) == 2
        origin_ids = sorted(d["originId"] for d in sandbox.items(2))
        assert origin_ids == sorted(str(i) for i in ids)
        with session_scope(engine, read_only=True) as s:
            links = list(s.execute(select(CrmLink)).scalars())
        assert all(link.crm_id > 0 for link in links)
        assert len(links) == 18

    def test_timeout_after_sending_is_looked_up_not_recreated(self, engine, sandbox):
        from tests.bitrix24.conftest import make_client

        first = add_appeal(engine, thread_key="a")
        with make_client(sandbox.webhook_url) as fast:
            worker_for(engine, fast).run_until_idle()
        second = add_appeal(engine, thread_key="b")  # same person: contact is in the outbox
        sandbox.faults(latency={"seconds": 1.5, "count": 1, "method": "batch"})
        with make_client(sandbox.webhook_url, timeout=0.3) as slow:
            worker = worker_for(engine, slow, retry_base_seconds=0.0001)
            worker.run_until_idle()
        assert sandbox.state()["deals"] == 2 and sandbox.state()["comments"] == 2
        methods = [c["method"] for c in sandbox.calls() if c["method"] != "batch"]
        slow_at = len(methods) - methods[::-1].index("crm.timeline.comment.add")
        # after the lost answer: lookups on originId and the comment marker, no second create
        assert "crm.item.list" in methods[slow_at:]
        assert "crm.timeline.comment.list" in methods[slow_at:]
        appeal = get_appeal(engine, second)
        assert appeal.delivery_state == DeliveryState.delivered
        assert appeal.crm_contact_id == get_appeal(engine, first).crm_contact_id

    def test_refused_create_is_dead_with_the_portals_reason(self, engine, sandbox, client):
        appeal_id = add_appeal(engine, target={"entity": "deal", "pipeline": 2, "stage": "NOPE"})
        worker_for(engine, client).run_until_idle()
        appeal = get_appeal(engine, appeal_id)
        assert appeal.delivery_state == DeliveryState.failed
        assert "CRM_FIELD_ERROR_VALUE_NOT_VALID" in (appeal.delivery_error or "")
        assert [j.state for j in _jobs(engine)] == [JobState.dead]
        assert sandbox.state()["deals"] == 0
