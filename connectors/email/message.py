"""Reading one e-mail: its identity, its thread, the customer's words, what it carries, and
whether a person wrote it at all.

Pure functions of the message bytes (research/channels.md §8). The IMAP poller files each
attachment in the file store before storing the message, and leaves in its place an empty part
with ``X-ClientHub-File: <sha256>``, so raw events stay small and parsing needs no mailbox.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from hub import files

FILE_HEADER = "X-ClientHub-File"
SIZE_HEADER = "X-ClientHub-File-Size"
OUR_ID_RE = re.compile(r"<clienthub\.([0-9a-f]{12})\.", re.IGNORECASE)
TAG_RE = re.compile(r"\[#([0-9a-f]{12})\]", re.IGNORECASE)
MSGID_RE = re.compile(r"<[^<>\s]+>")


def read(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _header(msg: EmailMessage, name: str) -> str:
    try:
        return str(msg.get(name, "") or "").strip()
    except (ValueError, TypeError, IndexError):  # a malformed header must not sink the message
        return ""


def message_id(msg: EmailMessage) -> str | None:
    found = MSGID_RE.findall(_header(msg, "Message-ID"))
    return found[0] if found else None


def references(msg: EmailMessage) -> list[str]:
    return MSGID_RE.findall(_header(msg, "References"))


def in_reply_to(msg: EmailMessage) -> str | None:
    found = MSGID_RE.findall(_header(msg, "In-Reply-To"))
    return found[0] if found else None


def external_id(raw: bytes) -> str:
    """``Message-ID``; without one, a hash of sender, date, subject and body (§8)."""
    msg = read(raw)
    mid = message_id(msg)
    if mid:
        return f"msgid:{mid[:240]}"
    basis = "|".join(_header(msg, h) for h in ("From", "Date", "Subject")) + "|" + body_text(msg)
    return "hash:" + hashlib.sha256(basis.encode()).hexdigest()


def thread_hash(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().lower().encode()).hexdigest()[:12]


def thread_key(msg: EmailMessage) -> str:
    """One deal per conversation, decided from the message alone:
    1. our subject tag ``[#…]``; 2. a Message-ID we generated (it embeds the thread);
    3. the root of ``References``; 4. ``In-Reply-To``; 5. the message itself."""
    tag = TAG_RE.search(_header(msg, "Subject"))
    if tag:
        return f"mail:{tag.group(1).lower()}"
    refs = references(msg)
    parent = in_reply_to(msg)
    for mid in [*refs, *([parent] if parent else [])]:
        ours = OUR_ID_RE.match(mid)
        if ours:
            return f"mail:{ours.group(1).lower()}"
    root = refs[0] if refs else parent or message_id(msg)
    return f"mail:{thread_hash(root)}" if root else "mail:unknown"


# What marks mail no person wrote to us (RFC 3834, RFC 2076, common autoresponders).
AUTO_RULES: list[tuple[str, Callable[[EmailMessage], bool]]] = [
    (
        "Auto-Submitted: {}",
        lambda m: _header(m, "Auto-Submitted").lower() not in ("", "no"),
    ),
    ("X-Autoreply", lambda m: bool(_header(m, "X-Autoreply") or _header(m, "X-Autorespond"))),
    (
        "Precedence: {}",
        lambda m: _header(m, "Precedence").lower() in ("bulk", "junk", "list", "auto_reply"),
    ),
    (
        "mailing list (List-Id / List-Unsubscribe)",
        lambda m: bool(_header(m, "List-Id") or _header(m, "List-Unsubscribe")),
    ),
    ("delivery report", lambda m: m.get_content_type() == "multipart/report"),
    (
        "sent by a mail system",
        lambda m: (
            parseaddr(_header(m, "From"))[1].lower().split("@")[0]
            in ("mailer-daemon", "postmaster")
        ),
    ),
]


def auto_reason(msg: EmailMessage) -> str | None:
    for template, test in AUTO_RULES:
        if test(msg):
            value = _header(msg, "Auto-Submitted") or _header(msg, "Precedence")
            return template.format(value) if "{}" in template else template
    return None


class _Text(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "blockquote", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: read what can be read
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    text = html_to_text(content) if part.get_content_type() == "text/html" else content
    return text.replace("\r\n", "\n").strip()


def _is_file(part: EmailMessage) -> bool:
    if part.is_multipart():
        return False
    if part.get_content_disposition() == "attachment":
        return True
    return bool(part.get_filename()) and part.get_content_maintype() not in ("text", "multipart")


def strip_attachments(msg: EmailMessage, save: Callable[[bytes, str, str], str]) -> bytes:
    """Hand each attachment to ``save(data, name, media_type) -> sha256`` and leave an empty,
    labelled part in its place; returns the message's new bytes."""
    for part in msg.walk():
        if not isinstance(part, EmailMessage) or not _is_file(part) or part.get(FILE_HEADER):
            continue
        data = part.get_payload(decode=True) or b""
        sha = save(
            data, files.safe_name(part.get_filename(), "attachment"), part.get_content_type()
        )
        part.set_payload("")
        del part["Content-Transfer-Encoding"]
        part[FILE_HEADER] = sha
        part[SIZE_HEADER] = str(len(data))
    return msg.as_bytes(policy=policy.SMTP)


def attachments(msg: EmailMessage) -> list[dict[str, Any]]:
    out = []
    for part in msg.walk():
        sha = str(part.get(FILE_HEADER, "") or "").strip()
        if files.SHA256_RE.match(sha):
            size = str(part.get(SIZE_HEADER, "0") or "0")
            out.append(
                files.attachment(
                    sha,
                    name=files.safe_name(part.get_filename(), "attachment"),
                    size=int(size) if size.isdigit() else 0,
                    media_type=part.get_content_type(),
                )
            )
    return out


def sender(msg: EmailMessage) -> tuple[str | None, str | None]:
    reply_to = getaddresses([_header(msg, "Reply-To")])
    name, addr = parseaddr(_header(msg, "From"))
    if reply_to and reply_to[0][1]:
        addr = reply_to[0][1]
        name = name or reply_to[0][0]
    return (name or None), (addr.lower() or None)


def sent_at(msg: EmailMessage) -> datetime | None:
    try:
        when = parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
