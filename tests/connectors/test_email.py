"""E-mail: one test per recorded message, then IMAP intake against a real Dovecot and SMTP replies
against a real aiosmtpd, both on loopback (tests/mailservers.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from connectors import get_connector
from connectors.base import Author, IgnoredEvent, OutgoingReply, RawEventView, SourceConfig
from connectors.email import EVENT_HANDLERS, poller
from connectors.email import message as mail
from connectors.email.quotes import strip_quoted
from hub import files
from hub.db import session_scope
from hub.models import Appeal, RawEvent, RawEventState, StoredFile
from tests.connectors.helpers import FIXTURES, RECEIVED
from tests.helpers import count, drain
from tests.mailservers import dovecot, smtp_sink  # noqa: F401 - fixtures

EML = FIXTURES / "email"


def parse(name: str, channel: str = "email", source: str = "support") -> list:
    raw = (EML / f"{name}.eml").read_bytes()
    return get_connector(channel).parse(
        RawEventView(
            id=5,
            channel=channel,
            source=source,
            external_id=mail.external_id(raw),
            event_type=name.split("__")[0],
            headers={},
            content_type="message/rfc822",
            body=raw,
            received_at=RECEIVED,
        )
    )


def test_every_fixture_has_a_test_and_every_event_a_fixture() -> None:
    names = {p.stem for p in EML.glob("*.eml")}
    assert {n for n in names if f"test_{n}" not in globals()} == set()
    assert set(EVENT_HANDLERS) == {n.split("__")[0] for n in names}


def test_message__reply_with_quote() -> None:
    [a] = parse("message__reply_with_quote")
    assert a.kind == "email"
    assert a.external_id == "msgid:<CAB7x-reply-2@mail.example.ru>"
    assert a.text == "Чек нашла, прикладываю номер: 0042-17. Когда можно подойти?\n\nАнна"
    assert a.author == Author(name="Анна Петрова", email="anna.petrova@example.ru")
    # The thread is the conversation's root, so the first message and this reply share a deal.
    assert a.thread_key == f"mail:{mail.thread_hash('<CAB7x-first-1@mail.example.ru>')}"
    assert a.received_at == datetime(2024, 6, 3, 9, 30, tzinfo=UTC)
    assert a.fields == {
        "subject": "Re: Возврат товара",
        "from": "anna.petrova@example.ru",
        "mailbox": "support",
        "message_id": "<CAB7x-reply-2@mail.example.ru>",
        "in_reply_to": "<CAB7x-first-1@mail.example.ru>",
        "references": ["<CAB7x-first-1@mail.example.ru>"],
    }


def test_message__attachment_stored() -> None:
    [a] = parse("message__attachment_stored")
    assert a.text == "Ценник 199 ₽, на кассе пробили 249.\n\nМагазин на Зелёной, 121"
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert a.attachments == [
        {
            "type": "file",
            "name": "price.jpg",
            "size": 4,
            "media_type": "image/jpeg",
            "file_id": sha,
            "url": f"/files/{sha}/price.jpg",
        }
    ]
    assert a.thread_key == f"mail:{mail.thread_hash('<abc123@example.com>')}"


def test_message__auto_reply() -> None:
    with pytest.raises(IgnoredEvent, match="Auto-Submitted: auto-replied"):
        parse("message__auto_reply")


def test_message__bulk_newsletter() -> None:
    with pytest.raises(IgnoredEvent, match="Precedence: bulk"):
        parse("message__bulk_newsletter")


def test_notification_email__2gis_new_review() -> None:
    [a] = parse("notification_email__2gis_new_review", "twogis", "70000001462117106")
    assert (a.kind, a.rating, a.author.name) == ("review", 2, "Ольга К.")
    assert a.text == "Кассир нагрубила, очередь 20 минут."
    assert a.thread_key == "review:148823911"
    assert a.fields["branch_id"] == "70000001462117106"
    assert a.fields["url"].endswith("/branches/70000001462117106/reviews/148823911")
    assert a.fields["low_rating"] is True and a.fields["via"] == "e-mail"


def test_notification_email__yandex_new_review() -> None:
    [a] = parse("notification_email__yandex_new_review", "yandex", "5452197270")
    assert (a.rating, a.author.name, a.text) == (1, "Марина С.", "Просрочка на полке с молочкой.")
    assert a.thread_key == "review:Vr7x9k2LmQp"
    assert a.fields["org_id"] == "5452197270"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Спасибо!\n\n-- \nИван, менеджер", "Спасибо!"),
        ("Да.\n-----Original Message-----\nFrom: x", "Да."),
        ("Ок\n\nOn Mon, 3 Jun 2024 at 11:02, Shop <s@x.ru> wrote:\n> hi", "Ок"),
        ("From: the start of my story, I liked it", "From: the start of my story, I liked it"),
        ("> only a quote", "> only a quote"),
    ],
)
def test_quoted_history_is_cut(text: str, kept: str) -> None:
    assert strip_quoted(text) == kept


# --- IMAP intake against Dovecot -------------------------------------------------------------


def _mail(
    subject: str, body: str, *, mid: str, sender: str = "client@example.ru", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@retail-sample.ru", subject
    msg["Message-ID"], msg["Date"] = mid, "Mon, 03 Jun 2024 10:00:00 +0000"
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg.as_bytes()


def _with_file(raw: bytes, data: bytes, name: str) -> bytes:
    msg = mail.read(raw)
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes()


@pytest.fixture
def mailbox(dovecot, engine, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CLIENTHUB_FILES_DIR", str(tmp_path / "files"))
    from hub.settings import get_settings

    get_settings.cache_clear()
    user = dovecot.add_user()
    yield user, SourceConfig("email", "support", user.source_config(), {"password": user.password})
    get_settings.cache_clear()


def _raws(engine) -> list[RawEvent]:
    with session_scope(engine, read_only=True) as s:
        return list(s.execute(select(RawEvent).order_by(RawEvent.id)).scalars())


class TestImapIntake:
    def test_messages_threads_files_reviews_and_auto_replies(self, engine, mailbox) -> None:
        user, source = mailbox
        first = _with_file(
            _mail("Возврат", "Хочу вернуть пылесос.", mid="<t1@example.ru>"),
            b"%PDF-1.4 receipt",
            "чек.pdf",
        )
        user.append(first)
        user.append(_mail("Re: Возврат", "Вот номер чека: 17", mid="<t2@example.ru>",
                          In_Reply_To="<t1@example.ru>", References="<t1@example.ru>"))  # fmt: skip
        user.append((EML / "message__auto_reply.eml").read_bytes())
        user.append((EML / "notification_email__2gis_new_review.eml").read_bytes())
        assert poller.poll_source(engine, source) == 4
        assert poller.poll_source(engine, source) == 0  # the cursor moved past all four
        user.append(first)  # the same Message-ID again (a copy in another folder, a resend)
        assert poller.poll_source(engine, source) == 0

        raws = _raws(engine)
        assert [(r.channel, r.source, r.event_type) for r in raws] == [
            ("email", "support", "message"),
            ("email", "support", "message"),
            ("email", "support", "message"),
            ("twogis", "70000001462117106", "notification_email"),
        ]
        assert b"%PDF-1.4 receipt" not in raws[0].body  # the file went to the store
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            appeals = list(s.execute(select(Appeal).order_by(Appeal.id)).scalars())
            auto = s.get(RawEvent, raws[2].id)
            stored = s.execute(select(StoredFile)).scalar_one()
        assert [(a.kind, a.channel) for a in appeals] == [
            ("email", "email"), ("email", "email"), ("review", "twogis"),
        ]  # fmt: skip
        assert appeals[0].thread_key == appeals[1].thread_key
        assert (auto.state, auto.state_reason) == (
            RawEventState.ignored, "not written by a person: Auto-Submitted: auto-replied",
        )  # fmt: skip
        [att] = appeals[0].attachments
        assert (att["name"], att["size"], stored.sha256) == ("чек.pdf", 16, att["file_id"])
        assert files.store_for().read(stored.sha256) == b"%PDF-1.4 receipt"
        assert appeals[2].external_id == "review:148823911" and appeals[2].rating == 2

    def test_start_from_now_skips_the_backlog(self, engine, mailbox) -> None:
        user, source = mailbox
        user.append(_mail("Старое", "письмо из архива", mid="<old@example.ru>"))
        fresh = SourceConfig(
            "email", "support", {**source.config, "start_from": "now"}, source.secrets
        )
        assert poller.poll_source(engine, fresh) == 0
        user.append(_mail("Новое", "свежее письмо", mid="<new@example.ru>"))
        assert poller.poll_source(engine, fresh) == 1
        assert count(engine, RawEvent) == 1

    def test_idle_wakes_up_on_new_mail(self, engine, mailbox) -> None:
        user, source = mailbox
        idle = SourceConfig(
            "email", "support", {**source.config, "idle_seconds": 10}, source.secrets
        )
        assert (
            poller.poll_source(
                engine, SourceConfig("email", "support", source.config, source.secrets)
            )
            == 0
        )
        later = threading.Timer(
            0.5, user.append, args=[_mail("Idle", "пришло", mid="<idle@example.ru>")]
        )
        started = time.monotonic()
        later.start()
        assert poller.poll_source(engine, idle) == 1
        assert time.monotonic() - started < 5  # woken by the server, not by the 10 s timeout
        later.join()

    def test_a_wrong_password_is_reported(self, engine, mailbox) -> None:
        _, source = mailbox
        with pytest.raises(Exception, match="login refused"):
            poller.poll_source(
                engine, SourceConfig("email", "support", source.config, {"password": "x"})
            )


class TestSmtpReply:
    def test_the_reply_threads_and_the_answer_to_it_lands_in_the_same_thread(
        self,
        engine,
        mailbox,
        smtp_sink,  # noqa: F811
    ) -> None:
        user, source = mailbox
        user.append(_mail("Где мой заказ?", "Заказ 123 не пришёл", mid="<q1@example.ru>"))
        poller.poll_source(engine, source)
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            appeal = s.execute(select(Appeal)).scalar_one()
        config = {**source.config, "smtp_host": smtp_sink.host, "smtp_port": smtp_sink.port,
                  "smtp_security": "none", "from_address": "support@retail-sample.ru",
                  "from_name": "Семейный рынок"}  # fmt: skip
        reply = OutgoingReply("42", "Заказ передан курьеру.", appeal.thread_key,
                              appeal.external_id, None, appeal.fields)  # fmt: skip
        sent = get_connector("email").send_reply(
            reply, SourceConfig("email", "support", config, {})
        )
        [out] = smtp_sink.messages
        tag = appeal.thread_key.removeprefix("mail:")
        assert out["In-Reply-To"] == "<q1@example.ru>"
        assert out["References"] == "<q1@example.ru>"
        assert out["Subject"] == f"Re: Где мой заказ? [#{tag}]"
        assert (
            out["Message-ID"]
            == sent.platform_message_id
            == f"<clienthub.{tag}.42@retail-sample.ru>"
        )
        assert smtp_sink.envelopes == [("support@retail-sample.ru", ["client@example.ru"])]
        assert out.get_content().strip() == "Заказ передан курьеру."
        # The customer answers from a client that keeps only In-Reply-To and drops the tag.
        user.append(
            _mail("ответ", "Спасибо, получил", mid="<q2@example.ru>", In_Reply_To=out["Message-ID"])
        )
        poller.poll_source(engine, source)
        drain(engine)
        with session_scope(engine, read_only=True) as s:
            keys = [a.thread_key for a in s.execute(select(Appeal).order_by(Appeal.id)).scalars()]
        assert keys == [appeal.thread_key, appeal.thread_key]
