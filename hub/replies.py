"""Staff answers out to the customer's channel, exactly once.

An operator message is stored first (``replies``, unique on Bitrix24's chat and message ids),
with one ``reply.send`` job. The job records its *intent* (state ``sending``) in its own commit
before calling the connector's ``send_reply``; a confirmed send is recorded in a commit of its
own right after the call (retried on database errors), a failure in the job's final transaction.
A run that finds ``sending`` knows an earlier attempt may have reached the customer:
- channels with an idempotency key (VK ``random_id``/``guid`` from the reply id; 2GIS looks
  for an identical answer first) are simply sent again — the platform drops the repeat;
- the others (Telegram, OK, e-mail) are *not* resent blindly: the reply becomes ``uncertain``,
  staff are told in the chat, and the job goes to dead letters; retrying it there is the human
  decision to send again.
The same holds inside one run: a send of a channel without an idempotency key that fails
ambiguously (a timeout or a dropped connection after the request went out, a 5xx) makes the
reply ``uncertain`` at once; only a failure that proves nothing was sent (``not_sent``) is
retried. The platform clients do not retry such writes either (connectors/platform_http.py).
Outcomes are reported back to Bitrix24 by ``reply.report`` (hub/bitrix24/openlines.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from connectors import get_connector
from connectors.base import OutgoingReply, SourceConfig
from connectors.platform_http import PermanentError, TransientError
from hub import files, queue
from hub.db import session_scope
from hub.jobs import JobContext, JobHandler, crash_at
from hub.models import Appeal, ChannelSource, Reply, ReplyOrigin, ReplyState
from hub.reply_content import fetch_attachments, format_reply, portal_hosts, with_file_links
from hub.settings import get_settings
from hub.storage import replies as store
from hub.storage.sources import to_config
from hub.timeutil import as_utc, utcnow

log = logging.getLogger("clienthub.replies")

SEND_KIND = "reply.send"
CHANGE_KIND = "reply.change"
REPORT_KIND = "reply.report"  # handled in hub/bitrix24/openlines.py
# A repeated send is dropped by the platform itself (see the module docstring).
IDEMPOTENT_CHANNELS = frozenset({"vk", "twogis"})


# -- storing operator messages -----------------------------------------------------------------
def _files_of(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Attachments of an operator message; Bitrix24 documents no shape, community handlers read
    ``files[i][name|link|type]`` (``downloadLink``/``mime`` in some versions)."""
    raw = message.get("files") or []
    items = list(raw.values()) if isinstance(raw, Mapping) else raw
    out = []
    for f in items if isinstance(items, list) else []:
        if not isinstance(f, Mapping):
            continue
        link = f.get("link") or f.get("downloadLink") or f.get("url")
        if link:
            name = files.safe_name(str(f.get("name") or "file"))
            media = str(f.get("mime") or f.get("type") or "")
            media = media if "/" in media else ""  # `type` is often just "file" or "image"
            out.append({"name": name, "link": str(link), "media_type": media, "fetched": False})
    return out


def store_operator_messages(
    session: Session, *, line_id: int | None, connector: str, messages: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Store the event's messages and queue their sends; a repeat of a stored message is
    skipped. Returns the new reply ids."""
    created = []
    for m in messages:
        im, message, chat = m.get("im") or {}, m.get("message") or {}, m.get("chat") or {}
        chat_id, message_id = _int(im.get("chat_id")), _int(im.get("message_id"))
        external = str(chat.get("id") or "")
        if chat_id is None or message_id is None or not external:
            log.warning("operator message without im.chat_id, im.message_id or chat.id")
            continue
        olchat = store.get_chat(session, external)
        appeal = None
        if olchat is not None:
            appeal = store.latest_in_thread(
                session, channel=olchat.channel, source=olchat.source, thread_key=olchat.thread_key
            )
        values: dict[str, Any] = {
            "origin": ReplyOrigin.openline.value,
            "appeal_id": appeal.id if appeal else None,
            "channel": appeal.channel if appeal else "",
            "source": appeal.source if appeal else "",
            "b24_chat_id": chat_id,
            "b24_message_id": message_id,
            "line_id": line_id,
            "external_chat_id": external[:255],
            "operator_user_id": _int(message.get("user_id")),
            "text": str(message.get("text") or ""),
            "attachments": _files_of(message),
            "state": ReplyState.pending.value if appeal else ReplyState.failed.value,
            "last_error": None if appeal else f"no ClientHub conversation for chat {external}",
        }
        reply_id = store.insert_reply(session, values)
        if reply_id is None:
            continue  # Bitrix24 delivered the same message again
        created.append(reply_id)
        if appeal is not None:
            queue.enqueue(
                session,
                SEND_KIND,
                f"{chat_id}:{message_id}",
                {"reply_id": reply_id},
                appeal_id=appeal.id,
            )
        else:
            enqueue_report(session, reply_id, "failed", str(values["last_error"]))
    return created


def store_card_reply(session: Session, *, appeal: Appeal, text: str, user_id: int | None) -> int:
    """A reply typed in the deal card; it goes out through the appeal's channel."""
    reply_id = store.insert_reply(
        session,
        {
            "origin": ReplyOrigin.deal_card.value,
            "appeal_id": appeal.id,
            "channel": appeal.channel,
            "source": appeal.source,
            "operator_user_id": user_id,
            "text": text,
            "state": ReplyState.pending.value,
        },
    )
    assert reply_id is not None
    queue.enqueue(
        session, SEND_KIND, f"card:{reply_id}", {"reply_id": reply_id}, appeal_id=appeal.id
    )
    return reply_id


def enqueue_report(session: Session, reply_id: int, outcome: str, detail: str = "") -> None:
    key = f"{reply_id}:{outcome}:{utcnow().timestamp():.6f}" if outcome == "note" else None
    queue.enqueue(
        session,
        REPORT_KIND,
        key or f"{reply_id}:{outcome}",
        {"reply_id": reply_id, "outcome": outcome, "detail": detail[:1000]},
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- the send job ------------------------------------------------------------------------------
def _load(
    ctx: JobContext, reply_id: int
) -> tuple[Reply | None, Appeal | None, SourceConfig | None]:
    with ctx.read() as s:
        reply = store.get_reply(s, reply_id)
        appeal = store.get_appeal(s, reply.appeal_id) if reply and reply.appeal_id else None
        row = None
        if reply is not None:
            row = s.execute(
                select(ChannelSource).where(
                    ChannelSource.channel == reply.channel, ChannelSource.source == reply.source
                )
            ).scalar_one_or_none()
        return reply, appeal, to_config(row) if row is not None else None


def _finish(ctx: JobContext, reply: Reply, state: ReplyState, error: str) -> None:
    """A refusal or doubt staff must see: on the reply, on the appeal, in Bitrix24."""
    assert reply.id is not None
    s = ctx.session
    if not store.set_state(s, reply.id, state, error=error, unless=ReplyState.sent):
        return  # another attempt recorded the delivery meanwhile: nothing to doubt
    if reply.appeal_id:
        store.set_reply_error(s, appeal_id=reply.appeal_id, error=error)
    enqueue_report(s, reply.id, state.value, error)
    ctx.fail(ctx.jobs[0], error, retry=False)  # dead letters: visible and retryable


def maybe_delivered(channel: str, error: str) -> str:
    """What staff read on an ``uncertain`` reply (the UI's reply history, the appeal's reply
    error, the system message in the Open Lines chat)."""
    return (
        f"возможно доставлено: проверьте в канале ({channel}) — у него нет ключа "
        "идемпотентности, и ClientHub не отправляет повторно сам. Если ответа там нет, повторите "
        f"задачу в «Мёртвых задачах», чтобы отправить снова. Ошибка: {error}"
    )


def not_sent(exc: TransientError) -> bool:
    """A refusal before anything reached the platform (safe to send again), as opposed to a
    failure after sending (a read timeout, a dropped connection, a 5xx)."""
    if exc.unprocessed:  # the client knows: nothing left, or refused before execution
        return True
    if exc.status == 429 or exc.code in (6, 9):  # rate limits: VK codes 6 and 9, HTTP 429
        return True
    detail = exc.detail or ""
    return detail.startswith("network error: Connect") or detail.startswith("SMTP 4")


def run_send(ctx: JobContext) -> None:
    settings = get_settings()
    job = ctx.jobs[0]
    reply, appeal, source = _load(ctx, int(job.payload["reply_id"]))
    if reply is None:
        ctx.fail(job, "the reply does not exist", retry=False)
        return
    if reply.state in (ReplyState.sent, ReplyState.failed, ReplyState.deleted):
        return  # already decided; a duplicate job or a retry after the commit
    connector = get_connector(reply.channel)
    sender = getattr(connector, "send_reply", None)
    if appeal is None or source is None or sender is None:
        why = "no appeal" if appeal is None else "no source" if source is None else "no send_reply"
        _finish(ctx, reply, ReplyState.failed, f"cannot answer on {reply.channel}: {why}")
        return
    idempotent = getattr(connector, "reply_idempotent", reply.channel in IDEMPOTENT_CHANNELS)
    if reply.state == ReplyState.sending and not idempotent:
        started = as_utc(reply.sending_at) if reply.sending_at else None
        if started and (utcnow() - started).total_seconds() < settings.reply_send_grace_seconds:
            # The worker that began it lost its lease but may still be waiting for the answer.
            ctx.fail(job, "an earlier attempt may still be in flight: waiting", retry=True)
            return
        why = "an earlier attempt was interrupted after the send began"
        _finish(ctx, reply, ReplyState.uncertain, maybe_delivered(reply.channel, why))
        return
    with ctx.read() as s:
        hosts = portal_hosts(s, settings) if reply.attachments else []
    attachments, blobs = fetch_attachments(list(reply.attachments), settings, hosts)
    body = with_file_links(format_reply(reply.text, reply.channel), attachments, settings)
    assert reply.id is not None
    with session_scope(ctx.engine) as s:  # the intent, committed before the platform call
        conn = s.connection()
        for data, entry in blobs:
            files.save(
                conn,
                files.store_for(settings),
                data=data,
                name=entry["name"],
                media_type=entry["media_type"],
                channel=reply.channel,
                source=reply.source,
            )
        row = s.get(Reply, reply.id)
        if row is not None:
            row.attachments = attachments
        store.mark_sending(s, reply.id, body=body)
    outgoing = OutgoingReply(
        reply_id=str(reply.id),
        text=body,
        thread_key=appeal.thread_key,
        in_reply_to=appeal.external_id,
        author_platform_id=appeal.author_platform_id,
        fields=appeal.fields,
    )
    try:
        sent = sender(outgoing, source)
    except PermanentError as exc:
        _finish(ctx, reply, ReplyState.failed, exc.detail or str(exc))
        return
    except TransientError as exc:
        if not idempotent and not not_sent(exc):  # maybe delivered: a human decides
            _finish(ctx, reply, ReplyState.uncertain, maybe_delivered(reply.channel, str(exc)))
            return
        _retry_later(ctx, reply, str(exc), certain=not_sent(exc))
        return
    except Exception as exc:  # noqa: BLE001 - unknown outcome: treated as "maybe sent"
        error = f"{type(exc).__name__}: {exc}"
        if not idempotent:
            _finish(ctx, reply, ReplyState.uncertain, maybe_delivered(reply.channel, error))
            return
        _retry_later(ctx, reply, error, certain=False)
        return
    crash_at(f"{SEND_KIND}:after_send")
    _record_sent(ctx, reply.id, appeal, sent.platform_message_id)
    ctx.log.info("reply sent", extra={"reply_id": reply.id, "channel": reply.channel})


# Pauses between attempts to record a delivery (about 16 s in all: a deadlock, a failover).
_RECORD_PAUSES = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


def _record_sent(ctx: JobContext, reply_id: int, appeal: Appeal, message_id: str | None) -> None:
    """A delivery the platform confirmed is committed at once, in its own transaction, and
    retried on a database error: if it waited for the job's final transaction, a deadlock, a
    lost lease or a crash there would leave the reply ``sending``, and the next run would call a
    known delivery ``uncertain``. Only a database down for longer still leads there."""
    for pause in (*_RECORD_PAUSES, None):
        try:
            with session_scope(ctx.engine) as s:
                now = utcnow()
                store.set_state(
                    s, reply_id, ReplyState.sent, platform_message_id=message_id, sent_at=now
                )
                store.mark_answered(s, appeal=appeal, at=now)
                enqueue_report(s, reply_id, "delivered")
            return
        except OperationalError as exc:
            if pause is None:
                raise
            ctx.log.warning("recording a sent reply failed, again in %.1f s: %s", pause, exc)
            time.sleep(pause)


def _retry_later(ctx: JobContext, reply: Reply, error: str, *, certain: bool) -> None:
    assert reply.id is not None
    s = ctx.session
    if certain:  # nothing reached the platform: the next attempt is a plain first send
        store.set_state(s, reply.id, ReplyState.pending, error=error)
    else:
        store.note_error(s, reply.id, error)
    if reply.appeal_id:
        store.set_reply_error(s, appeal_id=reply.appeal_id, error=f"retrying: {error}")
    if reply.attempts == 0:  # tell staff once; the dead-letter list shows the rest
        enqueue_report(s, reply.id, "delayed", error)
    ctx.fail(ctx.jobs[0], error, retry=True)


# -- edits and deletions from Bitrix24 ---------------------------------------------------------
def run_change(ctx: JobContext) -> None:
    """Relay an edit or a deletion where the connector can; otherwise note it on the reply and
    in the chat. Before sending, the change just applies to the stored reply.

    A connector relays by offering ``edit_reply(platform_message_id, text, fields, source)`` and
    ``delete_reply(platform_message_id, "", fields, source)`` (``fields``: the appeal's)."""
    job = ctx.jobs[0]
    action, text = job.payload["action"], str(job.payload.get("text") or "")
    reply, appeal, source = _load(ctx, int(job.payload["reply_id"]))
    if reply is None or reply.id is None:
        return
    s = ctx.session
    if reply.state == ReplyState.pending:
        if action == "delete":
            store.set_state(s, reply.id, ReplyState.deleted)
        else:
            row = s.get(Reply, reply.id)
            if row is not None:
                row.text = text
        store.add_note(s, reply.id, {"action": action, "result": "applied before sending"})
        return
    if reply.state != ReplyState.sent:
        store.add_note(s, reply.id, {"action": action, "result": f"ignored ({reply.state})"})
        return
    connector = get_connector(reply.channel)
    relay = getattr(connector, f"{action}_reply", None)
    if relay is None or source is None or appeal is None:
        why = f"{reply.channel}: ClientHub cannot {action} a sent message"
        store.add_note(s, reply.id, {"action": action, "result": "not relayed", "why": why})
        enqueue_report(s, reply.id, "note", why)
        return
    body = format_reply(text, reply.channel) if action == "edit" else ""
    try:
        relay(str(reply.platform_message_id or ""), body, appeal.fields, source)
    except (PermanentError, TransientError) as exc:
        store.add_note(s, reply.id, {"action": action, "result": "failed", "why": str(exc)})
        enqueue_report(s, reply.id, "note", f"{action} not relayed: {exc}")
        return
    store.add_note(s, reply.id, {"action": action, "result": "relayed"})
    if action == "delete":
        store.set_state(s, reply.id, ReplyState.deleted)


HANDLERS = [JobHandler(SEND_KIND, run_send), JobHandler(CHANGE_KIND, run_change)]
