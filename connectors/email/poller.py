"""IMAP intake: every enabled ``email`` source is a mailbox, polled (or IDLEd) by the scheduler.

Per source ``config``: ``imap_host``, ``imap_port`` (993), ``imap_security`` (``ssl``,
``starttls``, ``none``), ``username``, ``folder`` (``INBOX``), ``start_from`` (``now``: only mail
arriving after the first poll, the default; ``all``: everything in the folder), ``batch`` (50
messages per transaction), ``idle_seconds`` (0: poll each tick; >0: when nothing is new, wait
in IDLE up to that long). Secret ``password``.

The cursor is ``{uidvalidity, last_uid}`` (RFC 3501: UIDs mean something only within one
UIDVALIDITY; when it changes the folder is read again, and Message-ID de-duplication keeps the
old mail from becoming new appeals). Each batch — its attachments in the file store, its raw
events and the advanced cursor — is committed in one transaction.

2GIS and Yandex review e-mails are filed under the branch's review source (``twogis/<branch>``,
``yandex/<org>``) when the e-mail names it, so routing finds the store; the rest stays here.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from connectors.base import SourceConfig
from connectors.email import message as mail
from connectors.email.imap import ImapConfig, Mailbox
from connectors.email.notifications import classify
from connectors.polling import enabled_sources, run_each
from hub import files
from hub.storage import poller_cursors
from hub.storage.raw_events import IncomingEvent, store_event

CHANNEL = "email"
log = logging.getLogger("clienthub.email")


def cursor_name(source: SourceConfig) -> str:
    return f"email-imap:{source.source}"


def has_mailbox(source: SourceConfig) -> bool:
    return bool(source.config.get("imap_host"))


def imap_config(source: SourceConfig) -> ImapConfig:
    cfg = source.config
    security = str(cfg.get("imap_security", "ssl"))
    return ImapConfig(
        host=str(cfg["imap_host"]),
        port=int(cfg.get("imap_port") or (993 if security == "ssl" else 143)),
        username=str(cfg.get("username", "")),
        password=source.secrets.get("password", ""),
        security=security,
        folder=str(cfg.get("folder", "INBOX")),
        timeout=float(cfg.get("timeout_seconds", 30)),
    )


def _event(source: SourceConfig, raw: bytes) -> IncomingEvent:
    msg = mail.read(raw)
    ext = mail.external_id(raw)
    found = classify(msg)
    if found is not None and found.place_id:
        review = f"review:{found.review_id}" if found.review_id else f"email-review:{ext}"
        return IncomingEvent(
            channel=found.notifier.channel,
            source=found.place_id,
            external_id=review,
            event_type="notification_email",
            headers={"x-clienthub-intake": f"imap:{source.source}"},
            content_type="message/rfc822",
            body=raw,
        )
    return IncomingEvent(
        channel=CHANNEL,
        source=source.source,
        external_id=ext,
        event_type="notification_email" if found is not None else "message",
        headers={"x-clienthub-intake": f"imap:{source.source}"},
        content_type="message/rfc822",
        body=raw,
    )


def store_batch(
    engine: Engine, source: SourceConfig, messages: list[tuple[int, bytes]], cursor: dict
) -> int:
    """Attachments, raw events and the cursor in one transaction; returns how many were new."""
    store = files.store_for()
    new = 0
    with engine.begin() as conn:
        for _uid, raw in messages:

            def save(data: bytes, name: str, media: str) -> str:
                saved = files.save(
                    conn,
                    store,
                    data=data,
                    name=name,
                    media_type=media,
                    channel=CHANNEL,
                    source=source.source,
                )
                return saved.sha256

            body = mail.strip_attachments(mail.read(raw), save)
            if not store_event(conn, _event(source, body)).duplicate:
                new += 1
        poller_cursors.save(conn, cursor_name(source), cursor)
    return new


def poll_source(engine: Engine, source: SourceConfig) -> int:
    name = cursor_name(source)
    with engine.connect() as conn:
        cursor = poller_cursors.load(conn, name)
    batch = max(1, int(source.config.get("batch", 50)))
    idle = float(source.config.get("idle_seconds", 0))
    new = 0
    with Mailbox(imap_config(source)) as box:
        validity = box.uidvalidity
        if cursor.get("uidvalidity") != validity:
            if not cursor and source.config.get("start_from", "now") == "now":
                start = {"uidvalidity": validity, "last_uid": box.uidnext - 1}
                return store_batch(engine, source, [], start)
            if cursor:
                log.warning("%s: UIDVALIDITY changed; reading the folder again", name)
            cursor = {"uidvalidity": validity, "last_uid": 0}
        for attempt in range(2):
            uids = box.uids_after(int(cursor["last_uid"]))
            for i in range(0, len(uids), batch):
                fetched = box.fetch(uids[i : i + batch])
                if not fetched:
                    continue
                cursor = {"uidvalidity": validity, "last_uid": fetched[-1][0]}
                new += store_batch(engine, source, fetched, cursor)
            if uids or idle <= 0 or attempt or not box.idle(idle):
                break
    return new


def poll_all(engine: Engine) -> int:
    """The periodic job: every enabled e-mail source with an ``imap_host``."""
    return run_each(engine, enabled_sources(engine, CHANNEL, has_mailbox), cursor_name, poll_source)
