"""A thread is one CRM item, even when a later message of it routes to the other entity type (a
customer's reply asks for a price list: routing alone would make it a supplier lead)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.models import CrmLink
from tests.bitrix24.conftest import Sandbox, add_appeal, get_appeal, worker_for

DEAL = {"entity": "deal", "pipeline": 2, "stage": "C2:NEW"}
LEAD = {"entity": "lead", "pipeline": None, "stage": "NEW"}


def _appeal(engine: Engine, target: dict[str, Any], text: str) -> int:
    return add_appeal(engine, channel="email", source="support", kind="email",
                      thread_key="mail:0123456789ab", target=target, text=text)  # fmt: skip


def _links(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine, read_only=True) as s:
        rows = s.execute(select(CrmLink).where(CrmLink.kind.in_(["deal", "lead"]))).scalars()
        return [(r.kind, r.key) for r in rows]


def _assert_one_item(engine: Engine, sandbox: Sandbox, entity: str, *ids: int) -> None:
    appeals = [get_appeal(engine, i) for i in ids]
    first = appeals[0]
    assert [(a.crm_entity, a.crm_entity_id) for a in appeals] == [
        (entity, first.crm_entity_id)
    ] * len(ids)
    state = sandbox.state()
    assert (state["deals"], state["leads"]) == ((1, 0) if entity == "deal" else (0, 1))
    assert _links(engine) == [(entity, "thread:email:support:mail:0123456789ab")]
    owners = {(c["ENTITY_TYPE"], c["ENTITY_ID"]) for c in sandbox.comments()}
    assert owners == {(entity, str(first.crm_entity_id))} and len(sandbox.comments()) == len(ids)


def test_a_reply_routed_to_a_lead_is_a_comment_in_the_threads_deal(engine, sandbox, client) -> None:
    first = _appeal(engine, DEAL, "Пылесос не включается")
    worker_for(engine, client).run_until_idle()
    reply = _appeal(engine, LEAD, "И пришлите прайс-лист")
    worker_for(engine, client).run_until_idle()
    _assert_one_item(engine, sandbox, "deal", first, reply)


def test_in_one_batch_the_earliest_message_decides(engine, sandbox, client) -> None:
    first = _appeal(engine, LEAD, "Коммерческое предложение: прайс во вложении")
    reply = _appeal(engine, DEAL, "Когда ответите?")
    worker_for(engine, client).run_until_idle()
    _assert_one_item(engine, sandbox, "lead", first, reply)


def test_other_threads_keep_their_own_routing(engine, sandbox, client) -> None:
    deal = add_appeal(engine, thread_key="t1", target=DEAL)
    lead = add_appeal(engine, thread_key="t2", target=LEAD)
    worker_for(engine, client).run_until_idle()
    assert [get_appeal(engine, i).crm_entity for i in (deal, lead)] == ["deal", "lead"]
    assert (sandbox.state()["deals"], sandbox.state()["leads"]) == (1, 1)
