"""raw event -> connector.parse -> appeal(s) -> filters and routing -> delivery job.

Runs in the worker as the ``parse.event`` job. Everything one raw event causes (its appeals, their
routing and their delivery jobs) is written in the job's transaction, so a crash at any point
replays cleanly from the stored raw event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from connectors import get_connector
from connectors.base import IgnoredEvent, RawEventView, Rejected, UnsupportedEvent
from connectors.payload import PayloadError
from hub import queue, telephony
from hub.jobs import JobContext, JobHandler
from hub.models import Appeal, DeliveryState, RawEvent, RawEventState
from hub.routing import service as routing
from hub.routing.types import AppealInput, AuthorInput, TraceStep
from hub.settings import get_settings
from hub.storage import appeals as appeals_store
from hub.storage import raw_events as raw_store
from hub.storage import sources as sources_store
from hub.storage.raw_events import PARSE_JOB

if TYPE_CHECKING:
    from hub.storage.routing_sample import SampleAppeal

DELIVER_JOB = "deliver.appeal"


def to_view(raw: RawEvent, source_config: dict[str, object] | None = None) -> RawEventView:
    assert raw.id is not None
    return RawEventView(
        id=raw.id,
        channel=raw.channel,
        source=raw.source,
        external_id=raw.external_id,
        event_type=raw.event_type,
        headers=raw.headers,
        content_type=raw.content_type,
        body=raw.body,
        received_at=raw.received_at,
        source_config=source_config or {},
    )


def appeal_input(appeal: Appeal | SampleAppeal) -> AppealInput:
    """What routing reads of a stored appeal (or of the columns "test the draft" loads)."""
    return AppealInput(
        channel=appeal.channel,
        source=appeal.source,
        kind=appeal.kind,
        text=appeal.text,
        author=AuthorInput(
            name=appeal.author_name,
            phone=appeal.author_phone,
            email=appeal.author_email,
            platform_id=appeal.author_platform_id,
        ),
        fields=dict(appeal.fields or {}),
        rating=appeal.rating,
        received_at=appeal.received_at,
    )


def delivery_configured() -> bool:
    s = get_settings()
    return bool(s.b24_webhook_url.get_secret_value() or s.b24_client_id or s.sandbox_enabled)


def route_appeal(session: Session, appeal: Appeal) -> None:
    """Route (or re-route) one appeal and queue its delivery; used by the pipeline and the UI."""
    decision = routing.route(session, appeal_input(appeal))
    appeals_store.apply_decision(appeal, decision)
    if decision.filtered:
        appeal.delivery_state = DeliveryState.none
    elif appeal.crm_entity_id is None and appeal.delivery_state != DeliveryState.delivered:
        if delivery_configured():
            appeal.delivery_state = DeliveryState.pending
            assert appeal.id is not None
            queue.enqueue(
                session,
                DELIVER_JOB,
                f"appeal:{appeal.id}",
                {"appeal_id": appeal.id},
                appeal_id=appeal.id,
            )
        else:
            appeal.trace = [
                *appeal.trace,
                {
                    "step": "delivery",
                    "rule": None,
                    "message": "Bitrix24 не подключён: обращение сохранено, но не передано в CRM.",
                    "data": {},
                },
            ]
    session.add(appeal)


def process_raw_event(session: Session, raw: RawEvent) -> list[Appeal]:
    """Parse one stored raw event into routed appeals. Connector errors mark the raw event; they
    never lose it."""
    assert raw.id is not None
    connector = get_connector(raw.channel)
    if connector is None:
        raw_store.set_state(
            session, raw_event_id=raw.id, state=RawEventState.unsupported, reason="no connector"
        )
        return []
    source_config = _source_config(session, raw.channel, raw.source)
    try:
        parsed = connector.parse(to_view(raw, source_config))
    except UnsupportedEvent as exc:
        raw_store.set_state(
            session, raw_event_id=raw.id, state=RawEventState.unsupported, reason=str(exc)
        )
        return []
    except IgnoredEvent as exc:
        raw_store.set_state(
            session, raw_event_id=raw.id, state=RawEventState.ignored, reason=str(exc)
        )
        return []
    created: list[Appeal] = []
    for item in parsed:
        appeal = appeals_store.insert_parsed(session, event=to_view(raw), parsed=item)
        if item.kind == telephony.KIND:
            # A call arrives as several events: hub/telephony.py merges them into one appeal and
            # routes it once the call has ended.
            merged = telephony.merge_event(
                session,
                raw=to_view(raw, source_config),
                parsed=item,
                inserted=appeal,
                route=route_appeal,
            )
            created.extend([merged] if merged is not None else [])
            continue
        if appeal is None:
            continue  # the same platform message came before as another event
        route_appeal(session, appeal)
        created.append(appeal)
    raw_store.set_state(
        session,
        raw_event_id=raw.id,
        state=RawEventState.parsed,
        reason=None if parsed else "no appeal in this event",
    )
    return created


def _source_config(session: Session, channel: str, source: str) -> dict[str, object]:
    for row in sources_store.list_all(session):
        if row.channel == channel and row.source == source:
            return dict(row.config)
    return {}


def run_parse(ctx: JobContext) -> None:
    with ctx.read() as s:
        ids = [int(j.payload["raw_event_id"]) for j in ctx.jobs]
        raws = {r.id: r for r in (s.get(RawEvent, i) for i in ids) if r is not None}
    session = ctx.session
    for job in ctx.jobs:
        raw = raws.get(int(job.payload["raw_event_id"]))
        if raw is None:
            ctx.fail(job, "raw event not found", retry=False)
            continue
        try:
            with session.begin_nested():
                appeals = process_raw_event(session, raw)
        except (PayloadError, Rejected) as exc:
            # A malformed payload fails the same way on every attempt: dead letters at once, with
            # the connector's reason, for a human (not retried for the whole horizon).
            ctx.log.warning("malformed raw event %s: %s", raw.id, exc)
            ctx.fail(job, f"{type(exc).__name__}: {exc}", retry=False)
            continue
        except Exception as exc:  # one broken event must not hold back the others
            ctx.log.exception("parse failed for raw event %s", raw.id)
            ctx.fail(job, f"{type(exc).__name__}: {exc}")
            continue
        for appeal in appeals:
            ctx.log.info(
                "appeal stored",
                extra={"appeal_id": appeal.id, "state": appeal.state, "raw_event_id": raw.id},
            )


HANDLERS = [JobHandler(PARSE_JOB, run_parse, batch_size=50)]

__all__ = ["DELIVER_JOB", "HANDLERS", "TraceStep", "process_raw_event", "route_appeal"]
