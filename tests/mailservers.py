"""Real mail servers on loopback for the e-mail tests: Debian's Dovecot for IMAP (started from a
config written into a temp dir, passwd-file users, Maildir) and aiosmtpd for SMTP.

Mail is put into a mailbox over IMAP ``APPEND``, exactly as another client would. Dovecot must
be installed (``apt-get install dovecot-imapd``; ``.ci/run`` does it): without it the fixture
fails with that instruction instead of skipping.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.pg import free_port

POOL = 64  # mailboxes per session
DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
# The test's temp dirs are private (0700): the auth processes read the passwd-file as root.
service auth {{
  user = root
}}
service auth-worker {{
  user = root
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Dovecot:
    """One Dovecot per test session; each test adds its own user (its own mailbox)."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise RuntimeError(
                "the IMAP tests need Dovecot: apt-get install -y dovecot-imapd "
                "(.ci/run installs it)"
            )
        self.binary = binary
        self.root = root
        # Dovecot refuses to keep mail as root: as root, mailboxes belong to the dovecot user.
        self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        if self.mail_uid == 0:
            import pwd

            entry = pwd.getpwnam("dovecot" if _user_exists("dovecot") else "nobody")
            self.mail_uid, self.mail_gid = entry.pw_uid, entry.pw_gid
        root.chmod(0o755)
        (root / "mail").mkdir(exist_ok=True)
        (root / "home").mkdir(exist_ok=True)
        for d in (root / "mail", root / "home"):
            os.chown(d, self.mail_uid, self.mail_gid)
        self.port = free_port()
        self.users_file = root / "users"
        self._free = [
            MailUser(self, f"box{i:03}-{uuid.uuid4().hex[:6]}", "secret") for i in range(POOL)
        ]
        self.users_file.write_text("".join(f"{u.name}:{{PLAIN}}{u.password}\n" for u in self._free))
        (root / "run").mkdir(parents=True, exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        self.conf = root / "dovecot.conf"
        self.conf.write_text(
            DOVECOT_CONF.format(
                root=root,
                port=self.port,
                uid=self.mail_uid,
                gid=self.mail_gid,
                login_user="dovenull" if _user_exists("dovenull") else "root",
                internal_user="dovecot" if _user_exists("dovecot") else "root",
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode()
                raise RuntimeError(f"dovecot exited: {err} {self._log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self._log()}")

    def _log(self) -> str:
        log = self.root / "dovecot.log"
        return log.read_text()[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def add_user(self) -> MailUser:
        """A fresh mailbox. Users are written before Dovecot starts: it re-reads a passwd-file
        only when it notices a change, which a write within the same second can hide."""
        if not self._free:
            raise RuntimeError(f"all {POOL} test mailboxes are used: raise POOL")
        return self._free.pop(0)


@dataclass
class MailUser:
    server: Dovecot
    name: str
    password: str

    def connect(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.server.port, timeout=10)
        conn.login(self.name, self.password)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.connect()
        try:
            typ, data = conn.append(
                folder, None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            )
            assert typ == "OK", data
        finally:
            conn.logout()

    def source_config(self, **extra: object) -> dict[str, object]:
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.server.port,
            "imap_security": "none",
            "username": self.name,
            "start_from": "all",
            **extra,
        }


@dataclass
class SmtpSink:
    """aiosmtpd on loopback, keeping every message it accepts."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
        with self._lock:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"

    def serve(self) -> Iterator[SmtpSink]:
        controller = Controller(self, hostname=self.host, port=self.port)
        controller.start()
        try:
            yield self
        finally:
            controller.stop()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    root = Path(tempfile.mkdtemp(prefix="clienthub-dovecot-"))  # not under pytest's 0700 dirs
    server = Dovecot(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    yield from SmtpSink().serve()
