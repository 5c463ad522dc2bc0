"""Replies, Open Lines chats and the open lines the connector is on. All SQL for hub/replies.py,
hub/bitrix24/openlines.py and the Bitrix24 app pages. Nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hub.models import (
    Appeal,
    AppealState,
    ConnectorLine,
    OpenLineChat,
    PortalToken,
    Reply,
    ReplyState,
)
from hub.timeutil import utcnow


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


# -- replies -----------------------------------------------------------------------------------
def insert_reply(session: Session, values: dict[str, Any]) -> int | None:
    """A new reply; None when the same Bitrix24 message (chat id, message id) is stored already."""
    values = {"attachments": [], "notes": [], "created_at": utcnow(), **values}
    stmt = _insert(session, Reply).values(**values)
    if values.get("b24_message_id") is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["b24_chat_id", "b24_message_id"],
            index_where=text("b24_message_id IS NOT NULL"),
        )
    return session.execute(stmt.returning(Reply.id)).scalar()


def get_reply(session: Session, reply_id: int) -> Reply | None:
    return session.get(Reply, reply_id)


def by_b24_message(session: Session, *, chat_id: int, message_id: int) -> Reply | None:
    return session.execute(
        select(Reply).where(Reply.b24_chat_id == chat_id, Reply.b24_message_id == message_id)
    ).scalar_one_or_none()


def replies_for(session: Session, appeal_ids: Sequence[int]) -> list[Reply]:
    if not appeal_ids:
        return []
    stmt = select(Reply).where(Reply.appeal_id.in_(appeal_ids)).order_by(Reply.created_at, Reply.id)
    return list(session.execute(stmt).scalars())


def mark_sending(session: Session, reply_id: int, *, body: str) -> None:
    """The intent: committed before the platform is called."""
    session.execute(
        update(Reply)
        .where(Reply.id == reply_id)
        .values(
            state=ReplyState.sending.value,
            body=body,
            attempts=Reply.attempts + 1,
            sending_at=utcnow(),
        )
    )


def set_state(
    session: Session,
    reply_id: int,
    state: ReplyState,
    *,
    error: str | None = None,
    platform_message_id: str | None = None,
    sent_at: datetime | None = None,
    unless: ReplyState | None = None,
) -> bool:
    """Whether the reply was changed (``unless``: leave a reply in that state alone)."""
    values: dict[str, Any] = {"state": state.value, "last_error": error[:2000] if error else None}
    if platform_message_id is not None:
        values["platform_message_id"] = platform_message_id[:255]
    if sent_at is not None:
        values["sent_at"] = sent_at
    where = [Reply.id == reply_id]
    if unless is not None:
        where.append(Reply.state != unless.value)
    result = session.execute(update(Reply).where(*where).values(**values))
    return bool(getattr(result, "rowcount", 1))


def note_error(session: Session, reply_id: int, error: str) -> None:
    """A failure that will be retried: the reply keeps its state, staff see the reason."""
    session.execute(update(Reply).where(Reply.id == reply_id).values(last_error=error[:2000]))


def add_note(session: Session, reply_id: int, note: dict[str, Any]) -> None:
    reply = session.get(Reply, reply_id)
    if reply is not None:
        reply.notes = [*reply.notes, {**note, "at": utcnow().isoformat()}]
        session.add(reply)


def mark_reported(session: Session, reply_id: int) -> None:
    session.execute(update(Reply).where(Reply.id == reply_id).values(reported_at=utcnow()))


# -- appeals -----------------------------------------------------------------------------------
def mark_answered(
    session: Session, *, at: datetime, appeal: Appeal | None = None, appeal_id: int | None = None
) -> None:
    """First reply time is kept from the first delivered answer (reaction-time reports). An
    answer in a conversation answers every earlier message of it."""
    if appeal is None:
        appeal = session.get(Appeal, appeal_id)
        if appeal is None:
            return
    answered = Appeal.id == appeal.id
    if appeal.thread_key:
        answered = or_(
            answered,
            and_(
                Appeal.channel == appeal.channel,
                Appeal.source == appeal.source,
                Appeal.thread_key == appeal.thread_key,
                Appeal.received_at <= at,
            ),
        )
    session.execute(
        update(Appeal)
        .where(answered)
        .values(
            first_reply_at=func.coalesce(Appeal.first_reply_at, at),
            state=case(
                (
                    Appeal.state.in_([AppealState.routed.value, AppealState.delivered.value]),
                    AppealState.answered.value,
                ),
                else_=Appeal.state,
            ),
            reply_error=None,
        )
    )


def set_reply_error(session: Session, *, appeal_id: int, error: str) -> None:
    session.execute(update(Appeal).where(Appeal.id == appeal_id).values(reply_error=error[:2000]))


def get_appeal(session: Session, appeal_id: int) -> Appeal | None:
    return session.get(Appeal, appeal_id)


def latest_in_thread(
    session: Session, *, channel: str, source: str, thread_key: str
) -> Appeal | None:
    """The customer's last message in a conversation: the one an answer replies to."""
    return session.execute(
        select(Appeal)
        .where(Appeal.channel == channel, Appeal.source == source, Appeal.thread_key == thread_key)
        .order_by(Appeal.received_at.desc(), Appeal.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def appeals_of_deal(session: Session, *, deal_id: int, limit: int = 50) -> list[Appeal]:
    return list(
        session.execute(
            select(Appeal)
            .where(Appeal.crm_entity == "deal", Appeal.crm_entity_id == deal_id)
            .order_by(Appeal.received_at, Appeal.id)
            .limit(limit)
        ).scalars()
    )


def set_chat_on_appeals(
    session: Session, *, appeal_ids: Sequence[int], chat_id: int | None, session_id: int | None
) -> None:
    if appeal_ids:
        session.execute(
            update(Appeal)
            .where(Appeal.id.in_(appeal_ids))
            .values(b24_chat_id=chat_id, b24_session_id=session_id)
        )


# -- Open Lines chats --------------------------------------------------------------------------
def get_chat(session: Session, external_chat_id: str) -> OpenLineChat | None:
    return session.execute(
        select(OpenLineChat).where(OpenLineChat.external_chat_id == external_chat_id)
    ).scalar_one_or_none()


def chats(session: Session, external_ids: Sequence[str]) -> dict[str, OpenLineChat]:
    if not external_ids:
        return {}
    rows = session.execute(
        select(OpenLineChat).where(OpenLineChat.external_chat_id.in_(list(external_ids)))
    ).scalars()
    return {r.external_chat_id: r for r in rows}


def save_chat(session: Session, values: dict[str, Any]) -> None:
    """Insert or update the chat of a thread with what Bitrix24 answered."""
    now = utcnow()
    row = get_chat(session, values["external_chat_id"])
    if row is None:
        row = OpenLineChat(created_at=now, **values)
    else:
        for key, value in values.items():
            if value is not None:
                setattr(row, key, value)
    row.updated_at = now
    session.add(row)


def chat_of_thread(
    session: Session, *, channel: str, source: str, thread_key: str
) -> OpenLineChat | None:
    return session.execute(
        select(OpenLineChat)
        .where(
            OpenLineChat.channel == channel,
            OpenLineChat.source == source,
            OpenLineChat.thread_key == thread_key,
        )
        .order_by(OpenLineChat.id.desc())
        .limit(1)
    ).scalar_one_or_none()


# -- connector lines ---------------------------------------------------------------------------
def active_line(session: Session, *, connector: str) -> ConnectorLine | None:
    return session.execute(
        select(ConnectorLine)
        .where(ConnectorLine.connector == connector, ConnectorLine.active.is_(True))
        .order_by(ConnectorLine.updated_at.desc(), ConnectorLine.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def set_line(
    session: Session,
    *,
    domain: str,
    connector: str,
    line_id: int,
    active: bool,
    user_id: int | None = None,
) -> None:
    row = session.execute(
        select(ConnectorLine).where(
            ConnectorLine.domain == domain,
            ConnectorLine.connector == connector,
            ConnectorLine.line_id == line_id,
        )
    ).scalar_one_or_none()
    if row is None:
        row = ConnectorLine(domain=domain, connector=connector, line_id=line_id)
    row.active = active
    row.activated_by = user_id if active else row.activated_by
    row.updated_at = utcnow()
    session.add(row)


def deactivate_lines(
    session: Session, *, domain: str, connector: str | None = None, line_id: int | None = None
) -> int:
    stmt = update(ConnectorLine).where(ConnectorLine.domain == domain)
    if connector is not None:
        stmt = stmt.where(ConnectorLine.connector == connector)
    if line_id is not None:
        stmt = stmt.where(ConnectorLine.line_id == line_id)
    return session.execute(stmt.values(active=False, updated_at=utcnow())).rowcount


def forget_portal(session: Session, *, domain: str) -> int:
    """After ONAPPUNINSTALL: the stored tokens no longer work and must not verify anything."""
    return session.execute(delete(PortalToken).where(PortalToken.domain == domain)).rowcount
