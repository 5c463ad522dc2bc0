"""Open Lines: customer messages into the operator's chat, reply outcomes back to Bitrix24.

``openline.forward`` (queued when a messaging appeal's deal exists): the appeal goes into the
active open line with ``imconnector.send.messages`` — the customer as ``user``, the thread as
``chat.id``, the platform message id as ``message.id`` (docs: imconnector-send-messages.md) —
up to ``BATCH`` appeals in one request. The chat and session ids Bitrix24 answers are kept on
the appeal and in ``openline_chats``; the deal gets the chat link (one ``batch`` of updates).
``CRM tracker`` stays off (``disable_crm=Y``, group chats): ClientHub already made the deal.
A crash between the send and the commit can show a customer message twice in the chat (the
method documents no idempotency); it never reaches the customer twice.

``reply.report``: a delivered reply is confirmed with ``imconnector.send.status.delivery``, or in
the deal's timeline for deal-card replies; a refused or doubtful one becomes a system message in
the chat (``im.message.add`` with ``SYSTEM=Y``) or a timeline comment — never lost silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import queue
from hub.bitrix24 import plan
from hub.bitrix24.app_setup import app_client, app_enabled, connector_id, portal_base
from hub.bitrix24.batch import Batch
from hub.bitrix24.client import Bitrix24Client
from hub.bitrix24.errors import Bitrix24Error
from hub.bitrix24.factory import NotConfigured
from hub.jobs import BACKGROUND, JobContext, JobHandler
from hub.models import Appeal, Reply, ReplyOrigin
from hub.replies import REPORT_KIND
from hub.settings import Settings, get_settings
from hub.storage import replies as store
from hub.timeutil import utcnow

FORWARD_KIND = "openline.forward"
BATCH = 20
ClientFor = Callable[[Engine], Bitrix24Client]


def _default_client(engine: Engine) -> Bitrix24Client:
    return app_client(get_settings(), engine)


# -- ids ClientHub gives Bitrix24 --------------------------------------------------------------
def external_chat_id(appeal: Appeal) -> str:
    """Our ``chat.id``: one per conversation (thread), stable across messages."""
    thread = appeal.thread_key or f"appeal:{appeal.id}"
    value = f"{appeal.channel}:{appeal.source}:{thread}"
    if len(value) > 200:
        value = value[:150] + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]
    return value


def external_user_id(appeal: Appeal) -> str:
    who = appeal.author_platform_id or appeal.author_email or appeal.author_phone
    return f"{appeal.channel}:{appeal.source}:{who or f'appeal:{appeal.id}'}"[:255]


def _name_part(value: str) -> str:
    """Letters, spaces, ``-`` and ``'`` only, at most 25 characters (docs: user object)."""
    return re.sub(r"[^\w\s'\-]|[\d_]", "", value).strip()[:25]


def chat_url(base: str, b24_chat_id: int) -> str:
    return f"{base}/online/?IM_DIALOG=chat{b24_chat_id}"


def deal_url(base: str, appeal: Appeal) -> str:
    entity = appeal.crm_entity or "deal"
    return f"{base}/crm/{entity}/details/{appeal.crm_entity_id}/"


def message_item(appeal: Appeal, *, base: str, public_url: str) -> dict[str, Any]:
    first, _, last = (appeal.author_name or "").strip().partition(" ")
    user: dict[str, Any] = {"id": external_user_id(appeal), "name": _name_part(first) or "Клиент"}
    if _name_part(last):
        user["last_name"] = _name_part(last)
    phone = plan.normalize_phone(appeal.author_phone)
    if phone:
        user["phone"] = phone
    if appeal.author_email and "@" in appeal.author_email:
        user["email"] = appeal.author_email.strip()
    if appeal.fields.get("url"):
        user["url"] = str(appeal.fields["url"])
    text = appeal.text.strip()
    if appeal.is_edit:
        text = f"(исправлено клиентом) {text}"
    files = []
    for a in appeal.attachments or []:
        url = str(a.get("url") or a.get("link") or "")
        if url.startswith("/"):
            url = public_url + url
        if url.startswith("http"):
            files.append({"url": url, "name": str(a.get("name") or a.get("type") or "file")})
    message: dict[str, Any] = {
        "id": appeal.external_id or f"appeal:{appeal.id}",
        "date": int(appeal.received_at.timestamp()),
        "text": text or "(без текста)",
        "disable_crm": "Y",
    }
    if files:
        message["files"] = files
    chat = {"id": external_chat_id(appeal), "name": plan.title(appeal)[:255]}
    if appeal.crm_entity_id:
        chat["url"] = deal_url(base, appeal)
    return {"user": user, "message": message, "chat": chat}


# -- forwarding --------------------------------------------------------------------------------
def enqueue_forward(session: Session, appeals: Iterable[Appeal], settings: Settings) -> int:
    """Queue a forward for each just-delivered messaging appeal, when a line is switched on."""
    wanted = [a for a in appeals if a.id and a.channel in settings.b24_openline_channels]
    if not wanted or not app_enabled(settings):
        return 0
    if store.active_line(session, connector=connector_id(settings)) is None:
        return 0
    for appeal in wanted:
        queue.enqueue(
            session,
            FORWARD_KIND,
            f"appeal:{appeal.id}",
            {"appeal_id": appeal.id},
            appeal_id=appeal.id,
        )
    return len(wanted)


def _result_items(result: Any) -> list[dict[str, Any]]:
    data = result.get("DATA") if isinstance(result, dict) else None
    items = data.get("RESULT") if isinstance(data, dict) else None
    return [i if isinstance(i, dict) else {} for i in items] if isinstance(items, list) else []


def forward(client: Bitrix24Client, ctx: JobContext, settings: Settings) -> None:
    ids = [int(j.payload["appeal_id"]) for j in ctx.jobs]
    conn_id = connector_id(settings)
    with ctx.read() as s:
        appeals = {a.id: a for a in s.execute(select(Appeal).where(Appeal.id.in_(ids))).scalars()}
        line = store.active_line(s, connector=conn_id)
    todo = [(j, appeals.get(int(j.payload["appeal_id"]))) for j in ctx.jobs]
    live = [(j, a) for j, a in todo if a is not None and a.crm_entity_id and a.b24_chat_id is None]
    if line is None or not live:
        ctx.log.info("nothing to forward", extra={"line": line.line_id if line else None})
        return
    base = portal_base(ctx.engine, settings)
    public = settings.effective_public_url()
    items = [message_item(a, base=base, public_url=public) for _, a in live]
    try:
        result = client.call(
            "imconnector.send.messages",
            {"CONNECTOR": conn_id, "LINE": line.line_id, "MESSAGES": items},
        ).result
    except Bitrix24Error as exc:
        for job, _ in live:
            ctx.fail(job, str(exc), retry=exc.transient or exc.code == "NOT_ACTIVE_LINE")
        return
    answers = _result_items(result)
    forwarded: list[tuple[Appeal, int, int | None]] = []
    for i, (job, appeal) in enumerate(live):
        answer = answers[i] if i < len(answers) else {}
        session_info = answer.get("session") if isinstance(answer.get("session"), dict) else {}
        chat_id = _int(session_info.get("CHAT_ID"))
        if not answer.get("SUCCESS") or chat_id is None:
            ctx.fail(job, f"imconnector.send.messages: {answer.get('ERRORS') or 'no chat'}")
            continue
        forwarded.append((appeal, chat_id, _int(session_info.get("ID"))))
    with ctx.read() as s:
        known = store.chats(s, [external_chat_id(a) for a, _, _ in forwarded])
    links = _link_deals(client, forwarded, known, base, settings)
    s = ctx.session
    for appeal, chat_id, session_id in forwarded:
        ext = external_chat_id(appeal)
        store.save_chat(
            s,
            {
                "external_chat_id": ext,
                "channel": appeal.channel,
                "source": appeal.source,
                "thread_key": appeal.thread_key or f"appeal:{appeal.id}",
                "line_id": line.line_id,
                "connector": conn_id,
                "b24_chat_id": chat_id,
                "b24_session_id": session_id,
                "deal_id": appeal.crm_entity_id,
                "deal_linked": links.get(ext, known[ext].deal_linked if ext in known else False),
            },
        )
        store.set_chat_on_appeals(
            s, appeal_ids=[appeal.id or 0], chat_id=chat_id, session_id=session_id
        )
    ctx.log.info("forwarded to the open line", extra={"appeals": len(forwarded)})


def _link_deals(
    client: Bitrix24Client,
    forwarded: list[tuple[Appeal, int, int | None]],
    known: dict[str, Any],
    base: str,
    settings: Settings,
) -> dict[str, bool]:
    """Put the chat link on deals that lack it: one ``batch`` of ``crm.item.update``."""
    batch, keys = Batch(), {}
    for appeal, chat_id, _ in forwarded:
        ext = external_chat_id(appeal)
        row = known.get(ext)
        same = row is not None and row.deal_linked and row.b24_chat_id == chat_id
        if same or ext in keys.values() or not appeal.crm_entity_id:
            continue
        url = chat_url(base, chat_id)
        link = plan.appeal_link(settings.effective_public_url(), appeal.id or 0)
        fields: dict[str, Any] = {"sourceDescription": f"ClientHub: {link} · Чат: {url}"}
        if settings.b24_deal_chat_field:
            fields[settings.b24_deal_chat_field] = url
        cmd = f"u{len(keys)}"
        etid = plan.ENTITY_TYPE_IDS.get(appeal.crm_entity or "deal", 2)
        batch.add(
            cmd,
            "crm.item.update",
            {"entityTypeId": etid, "id": appeal.crm_entity_id, "fields": fields},
        )
        keys[cmd] = ext
    if not keys:
        return {}
    try:
        result = client.batch(batch)
    except Bitrix24Error:
        return {ext: False for ext in keys.values()}  # the next message of the thread retries
    return {ext: cmd in result.results for cmd, ext in keys.items()}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- reporting reply outcomes ------------------------------------------------------------------
MESSAGES = {
    "failed": "⚠ ClientHub: ответ НЕ доставлен клиенту ({channel}). Причина: {detail}",
    "uncertain": "⚠ ClientHub: не удалось подтвердить доставку ответа ({channel}). {detail}",
    "delayed": "ClientHub: {channel} пока не принял ответ, ClientHub повторит отправку. {detail}",
    "note": "ClientHub: {detail}",
}


def _marker(reply_id: int, outcome: str) -> str:
    return f"ClientHub reply #{reply_id} {outcome}"


def report(client: Bitrix24Client, ctx: JobContext, settings: Settings) -> None:
    job = ctx.jobs[0]
    outcome, detail = str(job.payload["outcome"]), str(job.payload.get("detail") or "")
    with ctx.read() as s:
        reply = s.get(Reply, int(job.payload["reply_id"]))
        appeal = s.get(Appeal, reply.appeal_id) if reply and reply.appeal_id else None
    if reply is None or reply.id is None:
        return
    channel = plan.CHANNEL_NAMES.get(reply.channel, reply.channel or "канал")
    try:
        if reply.origin == ReplyOrigin.deal_card:
            _timeline(client, reply, appeal, outcome, detail, channel, first=job.attempts <= 1)
        elif outcome == "delivered":
            client.call(
                "imconnector.send.status.delivery",
                {
                    "CONNECTOR": connector_id(settings),
                    "LINE": reply.line_id,
                    "MESSAGES": [
                        {
                            "im": {
                                "chat_id": reply.b24_chat_id,
                                "message_id": reply.b24_message_id,
                            },
                            "message": {
                                "id": [reply.platform_message_id or f"reply:{reply.id}"],
                                "date": int((reply.sent_at or utcnow()).timestamp()),
                            },
                            "chat": {"id": reply.external_chat_id},
                        }
                    ],
                },
                safe=True,  # marking delivered twice changes nothing
            )
        elif reply.b24_chat_id:
            text = MESSAGES.get(outcome, MESSAGES["note"]).format(channel=channel, detail=detail)
            client.call(
                "im.message.add",
                {"DIALOG_ID": f"chat{reply.b24_chat_id}", "MESSAGE": text.strip(), "SYSTEM": "Y"},
            )
    except Bitrix24Error as exc:
        ctx.fail(job, str(exc), retry=exc.transient or exc.code.upper() == "EXPIRED_TOKEN")
        return
    if outcome == "delivered":
        store.mark_reported(ctx.session, reply.id)


def _timeline(
    client: Bitrix24Client,
    reply: Reply,
    appeal: Appeal | None,
    outcome: str,
    detail: str,
    channel: str,
    *,
    first: bool,
) -> None:
    """Deal-card replies are recorded in the deal's timeline; a retry looks for its marker
    first, as comments have no idempotency key."""
    if appeal is None or not appeal.crm_entity_id:
        return
    entity = appeal.crm_entity or "deal"
    marker = _marker(reply.id or 0, outcome)
    if not first:
        rows = client.call(
            "crm.timeline.comment.list",
            {"filter": {"ENTITY_ID": appeal.crm_entity_id, "ENTITY_TYPE": entity}},
        ).result
        if any(marker in str(r.get("COMMENT", "")) for r in rows or []):
            return
    if outcome == "delivered":
        text = f"Ответ клиенту отправлен ({channel}):\n{reply.body}"
    else:
        text = MESSAGES.get(outcome, MESSAGES["note"]).format(channel=channel, detail=detail)
    fields = {"ENTITY_ID": appeal.crm_entity_id, "ENTITY_TYPE": entity}
    client.call(
        "crm.timeline.comment.add", {"fields": {**fields, "COMMENT": f"{text}\n\n{marker}"}}
    )


def make_handlers(client_for: ClientFor = _default_client) -> list[JobHandler]:
    def wrap(fn: Callable[[Bitrix24Client, JobContext, Settings], None]) -> Any:
        def run(ctx: JobContext) -> None:
            try:
                client = client_for(ctx.engine)
            except NotConfigured as exc:
                for job in ctx.jobs:
                    ctx.fail(job, str(exc), retry=True)
                return
            try:
                fn(client, ctx, get_settings())
            finally:
                if client_for is _default_client:
                    client.close()

        return run

    return [
        JobHandler(FORWARD_KIND, wrap(forward), batch_size=BATCH),
        JobHandler(REPORT_KIND, wrap(report), priority=BACKGROUND),
    ]


HANDLERS = make_handlers()


def reply_handlers() -> list[JobHandler]:
    """Every job kind of the replies feature, for hub/jobs.py."""
    from hub import replies
    from hub.bitrix24 import app_setup

    return [*replies.HANDLERS, *HANDLERS, *app_setup.HANDLERS]
