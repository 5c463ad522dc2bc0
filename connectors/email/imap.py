"""A thin IMAP client over stdlib ``imaplib``: connect, select read-only, list new UIDs, fetch
without marking read, and IDLE (RFC 2177; imaplib has no IDLE before Python 3.14).

Mailboxes are only read (``EXAMINE`` and ``BODY.PEEK[]``): flags stay as people left them.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import select
import ssl
from dataclasses import dataclass

from connectors.platform_http import PermanentError, TransientError

PLATFORM = "imap"
_UID_RE = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    username: str
    password: str
    security: str = "ssl"  # ssl | starttls | none
    folder: str = "INBOX"
    timeout: float = 30.0


class Mailbox:
    def __init__(self, cfg: ImapConfig) -> None:
        self.cfg = cfg
        try:
            if cfg.security == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    cfg.host,
                    cfg.port,
                    ssl_context=ssl.create_default_context(),
                    timeout=cfg.timeout,
                )
            else:
                conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    conn.starttls(ssl.create_default_context())
        except OSError as exc:
            raise TransientError(
                PLATFORM, f"cannot connect to {cfg.host}:{cfg.port}: {exc}"
            ) from None
        self.conn = conn
        try:
            conn.login(cfg.username, cfg.password)
        except imaplib.IMAP4.error as exc:
            self.close()
            raise PermanentError(PLATFORM, f"login refused for {cfg.username}: {exc}") from None
        typ, _ = conn.select(_quote(cfg.folder), readonly=True)
        if typ != "OK":
            self.close()
            raise PermanentError(PLATFORM, f"no folder {cfg.folder!r}")

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _status_value(self, key: str) -> int:
        data = self.conn.untagged_responses.get(key) or [b"0"]
        return int(data[-1])

    @property
    def uidvalidity(self) -> int:
        return self._status_value("UIDVALIDITY")

    @property
    def uidnext(self) -> int:
        return self._status_value("UIDNEXT")

    def uids_after(self, last_uid: int) -> list[int]:
        typ, data = self.conn.uid("SEARCH", f"UID {last_uid + 1}:*")
        if typ != "OK":
            raise TransientError(PLATFORM, f"UID SEARCH failed: {data!r}")
        # "n:*" always includes the last message, even when its UID is below n (RFC 3501 6.4.8).
        return sorted(u for u in (int(x) for x in (data[0] or b"").split()) if u > last_uid)

    def fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        if not uids:
            return []
        typ, data = self.conn.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        if typ != "OK":
            raise TransientError(PLATFORM, f"UID FETCH failed: {data!r}")
        out = []
        for item in data:
            if isinstance(item, tuple):
                m = _UID_RE.search(item[0])
                if m:
                    out.append((int(m.group(1)), item[1]))
        return sorted(out)

    def idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the server to announce new mail; True if it did."""
        conn = self.conn
        tag = conn._new_tag()  # noqa: SLF001 - imaplib has no public IDLE before 3.14
        conn.send(tag + b" IDLE\r\n")
        if not conn.readline().startswith(b"+"):
            return False
        woke = False
        sock = conn.socket()
        readable, _, _ = select.select([sock], [], [], seconds)
        if readable:
            woke = b"EXISTS" in conn.readline()
        conn.send(b"DONE\r\n")
        while True:  # read up to the tagged completion of IDLE
            line = conn.readline()
            if not line or line.startswith(tag):
                break
            woke = woke or b"EXISTS" in line
        return woke


def _quote(folder: str) -> str:
    return folder if folder.isalnum() else '"' + folder.replace('"', '\\"') + '"'
