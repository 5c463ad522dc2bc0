"""2GIS and Yandex "new review" e-mails -> review appeals: the fallback that works without any
cabinet automation.

Neither platform documents these e-mails, so everything is table-driven and forgiving: a
``Notifier`` recognises its platform by the sender's domain, finds the branch or organisation id
and the review id in the links, and the review's rating, author and text by the labels in
``FIELD_PATTERNS``. When a real e-mail differs, add a pattern here and a fixture beside the
others. The IMAP poller uses ``classify`` to file the e-mail under the branch's own source
(``twogis/<branch id>``, ``yandex/<org id>``), so routing knows the store, and a review that the
cabinet poller also saw is stored once (both use ``review:<id>``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr

from connectors.base import Author, ParsedAppeal, RawEventView, UnsupportedEvent
from connectors.email import message as mail
from connectors.reviews import NEW, review_appeal


@dataclass(frozen=True)
class Notifier:
    platform: str  # as recorded in appeals: "2gis", "yandex"
    channel: str  # the review channel the e-mail is filed under
    place_key: str  # "branch_id" / "org_id"
    sender: re.Pattern[str]  # the From address's domain
    place: re.Pattern[str]  # the branch / organisation id in a link
    review: re.Pattern[str]  # the review id in a link


NOTIFIERS = [
    Notifier(
        platform="2gis",
        channel="twogis",
        place_key="branch_id",
        sender=re.compile(r"@([\w-]+\.)*2gis\.(ru|com|kz)$", re.I),
        place=re.compile(r"2gis\.\w+/(?:[\w-]+/){0,3}(?:firm|branch|branches)/(\d{10,20})", re.I),
        review=re.compile(r"(?:/reviews?/|[?&#]review(?:Id|_id)?=)(\d{4,20})", re.I),
    ),
    Notifier(
        platform="yandex",
        channel="yandex",
        place_key="org_id",
        sender=re.compile(r"@([\w-]+\.)*yandex\.(ru|com|net|kz|by)$", re.I),
        place=re.compile(r"(?:/org/(?:[\w%-]+/)?|/sprav/)(\d{6,20})", re.I),
        review=re.compile(
            r"(?:reviews?%5BpublicId%5D=|reviews?\[publicId\]=|reviewId=)([\w-]{6,64})", re.I
        ),
    ),
]
FIELD_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "rating": [
        re.compile(r"(?:Оценка|Рейтинг|Rating)\s*[:—-]\s*(\d)", re.I),
        re.compile(r"\b(\d)\s*(?:из|/|of)\s*5\b", re.I),
    ],
    "author": [
        re.compile(r"^\s*(?:Автор|Author|От кого)\s*[:—-]\s*(.+?)\s*$", re.I | re.M),
        re.compile(
            r"^\s*(.{2,60}?)\s+(?:оставил[аи]?|написал[аи]?)\s+(?:новый\s+)?отзыв", re.I | re.M
        ),
    ],
    "text": [
        re.compile(
            r"(?:Текст отзыва|Отзыв|Review)\s*[:—-]\s*\n?(.+?)(?:\n\s*\n|\n\s*(?:Ответить|Перейти|"
            r"Посмотреть|Открыть|Reply|https?://)|\Z)",
            re.I | re.S,
        ),
        re.compile(r"[«\"](.{5,}?)[»\"]", re.S),
    ],
}
STARS = re.compile(r"([★⭐]{1,5})[☆]*")


@dataclass(frozen=True)
class Classified:
    notifier: Notifier
    place_id: str | None
    review_id: str | None
    link: str | None


def _links(msg: EmailMessage, text: str) -> list[str]:
    found = re.findall(r"https?://[^\s\"'<>)\]]+", text)
    html = msg.get_body(preferencelist=("html",))
    if html is not None:
        with contextlib.suppress(LookupError, ValueError):
            found += re.findall(r"href=[\"'](https?://[^\"']+)", str(html.get_content()))
    return found


def classify(msg: EmailMessage) -> Classified | None:
    """Which platform sent this review e-mail, for which branch, about which review."""
    addr = parseaddr(str(msg.get("From", "")))[1]
    notifier = next((n for n in NOTIFIERS if n.sender.search(addr or "")), None)
    if notifier is None:
        return None
    text = mail.body_text(msg)
    subject = str(msg.get("Subject", ""))
    if not re.search(r"отзыв|review", subject + " " + text[:2000], re.I):
        return None  # a newsletter or an invoice from the platform, not a review
    place = review = link = None
    for url in _links(msg, text):
        p, r = notifier.place.search(url), notifier.review.search(url)
        if p and not place:
            place, link = p.group(1), url
        if r and not review:
            review, link = r.group(1), url
    return Classified(notifier, place, review, link)


def _first(what: str, text: str) -> str | None:
    for pattern in FIELD_PATTERNS[what]:
        m = pattern.search(text)
        if m:
            return m.group(1).strip()
    return None


def _rating(text: str) -> int | None:
    value = _first("rating", text)
    if value is None:
        stars = STARS.search(text)
        return len(stars.group(1)) if stars else None
    rating = int(value)
    return rating if 1 <= rating <= 5 else None


def parse_notification_event(raw: RawEventView) -> list[ParsedAppeal]:
    msg = mail.read(raw.body)
    found = classify(msg)
    if found is None:
        raise UnsupportedEvent("not a 2GIS or Yandex review e-mail")
    text = mail.body_text(msg)
    review_text = _first("text", text) or mail.body_text(msg)
    rid = (
        found.review_id or f"mail-{mail.thread_hash(mail.message_id(msg) or raw.external_id or '')}"
    )
    fields: dict[str, object] = {"platform": found.notifier.platform, "via": "e-mail"}
    if found.place_id:
        fields[found.notifier.place_key] = found.place_id
    if found.link:
        fields["url"] = found.link
    mid = mail.message_id(msg)
    if mid:
        fields["mail_message_id"] = mid
    return [
        review_appeal(
            kind=NEW,
            external_id=raw.external_id or f"review:{rid}",
            review_id=rid,
            text=review_text,
            rating=_rating(text),
            author=Author(name=_first("author", text)),
            config=raw.source_config,
            fields=fields,
            when=mail.sent_at(msg),
        )
    ]
