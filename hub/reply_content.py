"""What the customer receives of an operator's message: Bitrix24 BB-code turned into the
channel's plain text with the operator's signature where the channel expects it, and the
operator's files, downloaded at once (their links are short-lived) under the SSRF guard."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlmodel import Session

from hub import files
from hub.models import PortalToken
from hub.netguard import FetchRefused, fetch_bytes, policy_from_settings
from hub.settings import Settings

# Where a signature reads better at the end, as in a letter.
FORMAL_CHANNELS = frozenset({"email", "twogis", "yandex", "form", "tilda"})


# -- Bitrix24 BB-code to the channel's plain text ----------------------------------------------
# Open Lines send "[b]Name:[/b] [br]text" when NEED_SIGNATURE is on (docs:
# on-im-connector-message-add.md); formatting per api-reference/chats/messages/formatting.md.
_SIGNATURE = re.compile(r"^\s*\[b\]([^\[\]\n]{1,100}?):\s*\[/b\]\s*(?:\[br\]|\n)?\s*", re.I)
_URL_WITH_TEXT = re.compile(r"\[url=([^\]]+)\](.*?)\[/url\]", re.I | re.S)
_URL_BARE = re.compile(r"\[url\](.*?)\[/url\]", re.I | re.S)
_IMG = re.compile(r"\[img(?:\s[^\]]*)?\](.*?)\[/img\]", re.I | re.S)
_LABELLED = re.compile(
    r"\[(user|chat|send|put|call|context)(?:=[^\]]*)?\](.*?)\[/\1\]", re.I | re.S
)
_QUOTE = re.compile(r"\[quote(?:=[^\]]*)?\](.*?)\[/quote\]", re.I | re.S)
_DROPPED = re.compile(r"\[(icon|disk|attach|timestamp)(?:[=\s][^\]]*)?\]", re.I)
_PLAIN_TAGS = re.compile(
    r"\[/?(b|i|u|s|code|p|left|right|center|justify|list|color|size|font)(?:=[^\]]*)?\]", re.I
)


def split_signature(text: str) -> tuple[str | None, str]:
    match = _SIGNATURE.match(text or "")
    if not match:
        return None, text or ""
    return match.group(1).strip(), text[match.end() :]


def bbcode_to_text(text: str) -> str:
    out = re.sub(r"\[br\]", "\n", text or "", flags=re.I)
    out = _QUOTE.sub(lambda m: _quoted(m.group(1)), out)
    out = _URL_WITH_TEXT.sub(lambda m: _link(m.group(1).strip(), m.group(2).strip()), out)
    out = _URL_BARE.sub(lambda m: m.group(1).strip(), out)
    out = _IMG.sub(lambda m: m.group(1).strip(), out)
    out = _LABELLED.sub(lambda m: m.group(2), out)
    out = _DROPPED.sub("", out)
    out = re.sub(r"\[\*\]\s*", "• ", out)
    out = _PLAIN_TAGS.sub("", out)
    out = html.unescape(out)
    out = re.sub(r"[ \t]+\n", "\n", out)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.strip().split("\n")) + "\n"


def _link(url: str, label: str) -> str:
    return url if not label or label == url else f"{label} ({url})"


def format_reply(text: str, channel: str) -> str:
    """What the customer reads: plain text, the operator's signature where the channel expects
    it (a name line in messengers, a closing line in e-mail and review answers)."""
    name, rest = split_signature(text)
    body = bbcode_to_text(rest)
    if not name:
        return body
    if channel in FORMAL_CHANNELS:
        return f"{body}\n\n— {name}"
    return f"{name}:\n{body}" if body else name


# -- the operator's files ----------------------------------------------------------------------
def portal_hosts(session: Session, settings: Settings) -> list[str]:
    """The hosts of the portals ClientHub talks to (the webhook's, the installed application's):
    the only ones an operator's file may come from."""
    hosts = {urlsplit(settings.b24_webhook_url.get_secret_value()).hostname or ""}
    hosts.add(settings.b24_portal_domain.split(":")[0])
    for domain, endpoint in session.execute(
        select(PortalToken.domain, PortalToken.client_endpoint)
    ):
        hosts.add(str(domain).split(":")[0])
        hosts.add(urlsplit(endpoint or "").hostname or "")
    return sorted(h.lower() for h in hosts if h)


def fetch_attachments(
    items: list[dict[str, Any]], settings: Settings, hosts: list[str]
) -> tuple[list[dict[str, Any]], list[tuple[bytes, dict[str, Any]]]]:
    """Download operator files at once (Bitrix24's links are signed and short-lived). Only from
    the portal's own ``hosts``, which may be on the office network (an on-premise Bitrix24, the
    built-in sandbox): ClientHub already sends that portal its REST calls. Any other link is
    refused with the reason kept on the attachment, and the reply goes without it."""
    policy = policy_from_settings(settings, hosts=hosts, allow_private=True)
    out, blobs = [], []
    for item in items:
        if item.get("fetched") or not item.get("link"):
            out.append(item)
            continue
        if not hosts:
            out.append({**item, "error": "no Bitrix24 portal is configured"})
            continue
        try:  # no token: the link itself is the credential
            data, media_type = fetch_bytes(
                item["link"], policy, max_bytes=settings.reply_attachment_max_bytes, timeout=20
            )
        except FetchRefused as exc:
            out.append({**item, "error": str(exc)})
            continue
        except httpx.HTTPError as exc:
            out.append({**item, "error": type(exc).__name__})
            continue
        media = item.get("media_type") or media_type
        sha = files.store_for(settings).put(data)
        entry = files.attachment(sha, name=item["name"], size=len(data), media_type=media)
        out.append({**entry, "fetched": True})
        blobs.append((data, entry))
    return out, blobs


def with_file_links(body: str, attachments: list[dict[str, Any]], settings: Settings) -> str:
    """No connector sends files natively yet: the customer gets links to ClientHub's copies."""
    links = [
        f"{a['name']}: {settings.effective_public_url()}{a['url']}"
        for a in attachments
        if a.get("fetched") and a.get("url")
    ]
    if not links:
        return body
    return (body + "\n\n" if body else "") + "Файлы:\n" + "\n".join(links)
