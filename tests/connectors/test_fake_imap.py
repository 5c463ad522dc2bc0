"""The fake IMAP server (hub/fakes/imap.py) against ClientHub's own IMAP client and poller: what
`clienthub demo` relies on must behave as Dovecot does for the commands we send."""

from __future__ import annotations

import imaplib
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from connectors.base import SourceConfig
from connectors.email import poller
from connectors.email.imap import ImapConfig, Mailbox
from connectors.platform_http import PermanentError
from hub.db import session_scope
from hub.fakes.imap import FakeImap
from hub.models import RawEvent

USER, PASSWORD = "support@retail-sample.ru", 'p"ss w\\ord'


def _mail(subject: str, body: str, mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Анна Петрова <anna@example.ru>"
    msg["To"] = USER
    msg["Subject"] = subject
    msg["Message-ID"] = mid
    msg["Date"] = "Mon, 03 Jun 2024 09:30:00 +0300"
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def imap() -> Iterator[tuple[FakeImap, ImapConfig]]:
    fake = FakeImap(uidvalidity=1717400000)
    fake.add_user(USER, PASSWORD)
    with fake.serve() as (host, port):
        yield fake, ImapConfig(host, port, USER, PASSWORD, security="none", timeout=5)


def test_login_examine_search_and_fetch_leave_the_mailbox_as_it_was(imap) -> None:
    fake, cfg = imap
    first = _mail("Возврат", "Хочу вернуть пылесос.\n", "<a1@example.ru>")
    fake.append(USER, first)
    fake.append(USER, _mail("Ещё", "Второе письмо", "<a2@example.ru>"))
    with Mailbox(cfg) as box:
        assert (box.uidvalidity, box.uidnext) == (1717400000, 3)
        assert box.uids_after(0) == [1, 2]
        assert box.uids_after(1) == [2]
        # "3:*" still matches the last message (RFC 3501 6.4.8); the client drops it.
        assert box.uids_after(2) == []
        [(uid, raw)] = box.fetch([1])
        assert uid == 1 and raw == first.replace(b"\n", b"\r\n")  # byte for byte, CRLF lines
        assert [u for u, _ in box.fetch([1, 2, 7])] == [1, 2]  # unknown UIDs are skipped
    assert all(not m.flags for m in fake.folder(USER, "INBOX").messages)  # EXAMINE + PEEK
    assert fake.commands[:3] == ["CAPABILITY", "LOGIN", "EXAMINE"]
    assert fake.commands[-1] == "LOGOUT"


def test_wrong_password_and_missing_folder_are_refused_as_dovecot_refuses_them(imap) -> None:
    _, cfg = imap
    with pytest.raises(PermanentError, match="login refused"):
        Mailbox(ImapConfig(cfg.host, cfg.port, USER, "wrong", security="none"))
    with pytest.raises(PermanentError, match="no folder 'Archive'"):
        Mailbox(ImapConfig(cfg.host, cfg.port, USER, PASSWORD, security="none", folder="Archive"))


def test_raw_protocol_answers(imap) -> None:
    fake, cfg = imap
    fake.append(USER, _mail("x", "y", "<r1@example.ru>"))
    conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=5)
    assert "IDLE" in conn.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        conn.uid("SEARCH", "ALL")  # imaplib itself refuses: not selected yet
    conn.login(USER, PASSWORD)  # imaplib quotes the password: '"', space and backslash inside
    typ, data = conn.select("INBOX", readonly=True)
    assert (typ, data) == ("OK", [b"1"])
    typ, data = conn.uid("FETCH", "1", "(UID FLAGS RFC822.SIZE)")
    assert typ == "OK" and b"UID 1" in data[0] and b"FLAGS ()" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="Unsupported search keys"):
        conn.uid("SEARCH", "SUBJECT", "x")  # not a subset our client uses: BAD, as a server says
    assert conn.noop()[0] == "OK"
    conn.logout()


def test_idle_is_woken_by_new_mail_and_times_out_without_it(imap) -> None:
    fake, cfg = imap
    with Mailbox(cfg) as box:
        started = time.monotonic()
        assert box.idle(0.3) is False
        assert time.monotonic() - started >= 0.3
        later = threading.Timer(0.3, fake.append, args=[USER, _mail("Idle", "пришло", "<i@x>")])
        later.start()
        started = time.monotonic()
        assert box.idle(10) is True
        assert time.monotonic() - started < 5
        later.join()
        assert box.uids_after(0) == [1]  # the session goes on after DONE


def test_the_poller_reads_the_fake_mailbox_once(engine, imap, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLIENTHUB_FILES_DIR", str(tmp_path / "files"))
    from hub.settings import get_settings

    get_settings.cache_clear()
    fake, cfg = imap
    config = {"imap_host": cfg.host, "imap_port": cfg.port, "imap_security": "none",
              "username": USER, "start_from": "all"}  # fmt: skip
    source = SourceConfig("email", "support", config, {"password": PASSWORD})
    fake.append(USER, _mail("Где заказ?", "Заказ 123 не пришёл", "<p1@example.ru>"))
    fake.append(USER, _mail("Ещё вопрос", "Когда привезут?", "<p2@example.ru>"))
    assert poller.poll_source(engine, source) == 2
    assert poller.poll_source(engine, source) == 0
    fake.append(USER, _mail("Третье", "И ещё", "<p3@example.ru>"))
    assert poller.poll_source(engine, source) == 1
    # A new server is a new mailbox: a new UIDVALIDITY, so the folder is read again and the
    # Message-IDs keep the old mail from being stored twice.
    again = FakeImap(uidvalidity=1717400001)
    again.add_user(USER, PASSWORD)
    for m in fake.folder(USER, "INBOX").messages:
        again.append(USER, m.raw)
    with again.serve() as (host, port):
        moved = SourceConfig("email", "support", {**config, "imap_port": port}, source.secrets)
        assert poller.poll_source(engine, moved) == 0
    with session_scope(engine, read_only=True) as s:
        raws = list(s.execute(select(RawEvent).order_by(RawEvent.id)).scalars())
    assert [(r.channel, r.event_type) for r in raws] == [("email", "message")] * 3
    get_settings.cache_clear()
