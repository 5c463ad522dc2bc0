"""The ``deliver.appeal`` job: a worker takes up to ``b24_deliver_claim`` due appeals at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy import case, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.delivery import Delivery, DeliveryConfig, Work
from hub.bitrix24.factory import client_from_settings
from hub.jobs import JobContext, JobHandler
from hub.models import Appeal, AppealState, DeliveryState
from hub.settings import Settings, get_settings

KIND = "deliver.appeal"

_clients: dict[int, Bitrix24Client] = {}
_lock = threading.Lock()


def _default_client(engine: Engine) -> Bitrix24Client:
    """One client per engine and process: its connection pool and pacing are shared."""
    with _lock:
        client = _clients.get(id(engine))
        if client is None:
            client = client_from_settings(get_settings(), engine)
            _clients[id(engine)] = client
        return client


def config_from_settings(settings: Settings) -> DeliveryConfig:
    kill = settings.fault_kill_at if settings.fault_kill_at.endswith(":after_batch") else ""
    return DeliveryConfig(
        public_url=settings.effective_public_url(),
        batch_appeals=settings.b24_batch_appeals,
        kill_point=kill,
    )


def apply_outcomes(session: Session, works: Sequence[Work], ctx: JobContext) -> None:
    """Record on each appeal what the CRM now has (in the worker's final transaction)."""
    for w in works:
        if w.appeal.id is None:
            continue
        row = update(Appeal).where(Appeal.id == w.appeal.id)
        if w.skip:
            session.execute(row.values(delivery_state=DeliveryState.none.value))
        elif w.comment_id is not None:
            session.execute(
                row.values(
                    delivery_state=DeliveryState.delivered.value,
                    state=case(
                        (Appeal.state == AppealState.routed.value, AppealState.delivered.value),
                        else_=Appeal.state,
                    ),
                    crm_entity=w.entity,
                    crm_entity_id=w.entity_id,
                    crm_contact_id=w.contact_id,
                    crm_comment_id=w.comment_id,
                    crm_visible_at=func.coalesce(Appeal.crm_visible_at, w.visible_at),
                    delivery_error=None,
                )
            )
        if w.comment_id is None and not w.skip:
            error = w.error or "not delivered"
            state = DeliveryState.pending if w.retry else DeliveryState.failed
            session.execute(row.values(delivery_state=state.value, delivery_error=error[:2000]))
            ctx.fail(w.job, error, retry=w.retry)
    from hub.bitrix24 import openlines  # messaging appeals also go into the Open Lines chat

    openlines.enqueue_forward(session, [w.appeal for w in works if w.comment_id], get_settings())


def make_handler(
    client_for: Callable[[Engine], Bitrix24Client] = _default_client,
    settings: Settings | None = None,
) -> JobHandler:
    settings = settings or get_settings()
    config = config_from_settings(settings)

    def run(ctx: JobContext) -> None:
        delivery = Delivery(client_for(ctx.engine), ctx.engine, config, owner=ctx.worker_id)
        works = delivery.run(ctx.jobs, ctx.read)  # all HTTP happens here, before ctx.session
        apply_outcomes(ctx.session, works, ctx)
        delivered = sum(1 for w in works if w.comment_id is not None)
        ctx.log.info(
            "delivered to Bitrix24",
            extra={"appeals": len(works), "delivered": delivered, "requests": delivery.requests},
        )

    return JobHandler(KIND, run, batch_size=max(1, settings.b24_deliver_claim))


def run_delivery(ctx: JobContext) -> None:
    _handler.run(ctx)


_handler = make_handler()
HANDLERS = [_handler]
