"""Staff answers by SMTP, threaded the way mail clients thread: ``In-Reply-To`` is the
customer's Message-ID, ``References`` their References plus that id, the subject ``Re: …`` with
our ``[#thread]`` tag (a fallback for clients that drop the headers), and our own Message-ID
``<clienthub.<thread>.<reply id>@domain>`` — derived from the reply id, so a retried send carries
the same id, and a customer's answer to it is recognised even without References.

Per source ``config``: ``smtp_host``, ``smtp_port`` (465), ``smtp_security`` (``ssl``,
``starttls``, ``none``), ``smtp_username`` (default ``username``), ``from_address`` (default
``username``), ``from_name``. Secret ``smtp_password`` (default ``password``).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from connectors.base import OutgoingReply, SentReply, SourceConfig
from connectors.email.message import TAG_RE
from connectors.platform_http import PermanentError, TransientError

PLATFORM = "smtp"


def reply_subject(subject: str, thread: str) -> str:
    subject = subject.strip() or "Ваше обращение"
    if not subject.lower().startswith(("re:", "ответ:")):
        subject = f"Re: {subject}"
    tag = thread.removeprefix("mail:")
    return subject if TAG_RE.search(subject) else f"{subject} [#{tag}]"


def build_reply(reply: OutgoingReply, source: SourceConfig) -> EmailMessage:
    f: Mapping[str, Any] = reply.fields
    cfg = source.config
    to = str(f.get("reply_to") or f.get("from") or "")
    if not to:
        raise PermanentError(PLATFORM, "the appeal has no address to answer")
    sender = str(cfg.get("from_address") or cfg.get("username") or "")
    if "@" not in sender:
        raise PermanentError(PLATFORM, "the source has no from_address")
    thread = str(reply.thread_key or "mail:000000000000")
    parent = str(f.get("message_id") or "")
    refs = [r for r in f.get("references") or [] if isinstance(r, str)]
    msg = EmailMessage()
    msg["From"] = formataddr((str(cfg.get("from_name") or ""), sender))
    msg["To"] = to
    msg["Subject"] = reply_subject(str(f.get("subject") or ""), thread)
    msg["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[1]
    msg["Message-ID"] = f"<clienthub.{thread.removeprefix('mail:')}.{reply.reply_id}@{domain}>"
    if parent:
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join([*[r for r in refs if r != parent], parent])
    msg["Auto-Submitted"] = "no"
    msg.set_content(reply.text)
    return msg


def send(msg: EmailMessage, source: SourceConfig) -> None:
    cfg, sec = source.config, source.secrets
    security = str(cfg.get("smtp_security", "ssl"))
    host = str(cfg.get("smtp_host") or "")
    if not host:
        raise PermanentError(PLATFORM, "the source has no smtp_host")
    port = int(cfg.get("smtp_port") or (465 if security == "ssl" else 587))
    user = str(cfg.get("smtp_username") or cfg.get("username") or "")
    password = sec.get("smtp_password") or sec.get("password") or ""
    timeout = float(cfg.get("timeout_seconds", 30))
    phase = "connect"  # until MAIL FROM, nothing can have been delivered
    try:
        if security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        with server:
            if security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if user and password:
                server.login(user, password)
            phase = "send"
            server.send_message(msg)
            phase = "accepted"  # 250 after DATA: the server has it, whatever QUIT does
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(PLATFORM, f"login refused: {exc.smtp_code}") from None
    except smtplib.SMTPNotSupportedError as exc:
        # The server lacks what the source is configured for (AUTH while credentials are set,
        # STARTTLS, SMTPUTF8): a setting to fix, not a fault that passes.
        raise PermanentError(PLATFORM, f"server does not support it: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(PLATFORM, f"recipient refused: {list(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientError(PLATFORM, f"SMTP {exc.smtp_code}") from None
        raise PermanentError(PLATFORM, f"SMTP {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        if phase == "accepted":
            return
        if "No suitable authentication method" in str(exc):  # AUTH offered, none we speak
            raise PermanentError(PLATFORM, f"login impossible: {exc}") from None
        # Before the envelope nothing can have reached the mailbox: safe to send again. A
        # failure during the transaction (a connection dropped after DATA) is ambiguous.
        raise TransientError(
            PLATFORM, f"{type(exc).__name__}: {exc}", unprocessed=phase == "connect"
        ) from None


def send_reply(reply: OutgoingReply, source: SourceConfig) -> SentReply:
    msg = build_reply(reply, source)
    send(msg, source)
    return SentReply(platform_message_id=str(msg["Message-ID"]), detail=str(msg["To"]))
