"""A fake IMAP server on loopback: plain IMAP4rev1 (no TLS), the subset ClientHub's client
(connectors/email/imap.py, over stdlib ``imaplib``) uses, answered in RFC 3501 formats.

Commands: CAPABILITY, NOOP, LOGOUT, LOGIN, SELECT, EXAMINE (read-only: ``[READ-ONLY]``, flags
never change), ``UID SEARCH`` (``ALL`` and ``UID <set>``, where ``n:*`` always includes the last
message, RFC 3501 6.4.8), ``UID FETCH`` (``UID``, ``FLAGS``, ``RFC822.SIZE``, ``BODY[]``,
``BODY.PEEK[]``, ``RFC822``; bodies as literals ``{n}``), and IDLE (RFC 2177: ``+ idling``,
``* n EXISTS`` when mail arrives, ``DONE``). Anything else is answered ``BAD``.

Mail is put in by the owner (``append``), as a delivery agent would; ``clienthub demo`` holds its
customers' e-mails here, so the IMAP poller reads them over a real socket. Dovecot would do the
same, but the demo cannot count on it being installed.
"""

from __future__ import annotations

import re
import select
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

CAPABILITIES = "IMAP4rev1 IDLE AUTH=PLAIN"
SYSTEM_FLAGS = r"(\Answered \Flagged \Deleted \Seen \Draft)"
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|\((?:[^()]|\([^()]*\))*\)|[^\s()"]+')


@dataclass
class Message:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Folder:
    uidvalidity: int
    uidnext: int = 1
    messages: list[Message] = field(default_factory=list)


class FakeImap:
    """Users, their folders and messages; ``serve()`` runs the server on a loopback port."""

    def __init__(self, *, uidvalidity: int | None = None) -> None:
        # A new server is a new mailbox to anyone who read an older one: a fresh UIDVALIDITY
        # (seconds since the epoch, as Dovecot does) tells a client its old UIDs mean nothing.
        self.uidvalidity = uidvalidity or int(time.time())
        self.users: dict[str, str] = {}
        self.folders: dict[tuple[str, str], Folder] = {}
        self.commands: list[str] = []  # every command received, tags stripped, for tests
        self.lock = threading.Condition()

    def add_user(self, name: str, password: str) -> None:
        with self.lock:
            self.users[name] = password
            self.folders.setdefault((name, "INBOX"), Folder(self.uidvalidity))

    def append(self, user: str, raw: bytes, *, folder: str = "INBOX") -> int:
        """Deliver one message; returns its UID. Waiting IDLE sessions are told at once."""
        with self.lock:
            box = self.folders.setdefault((user, _folder_key(folder)), Folder(self.uidvalidity))
            uid = box.uidnext
            box.uidnext += 1
            box.messages.append(Message(uid, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
            self.lock.notify_all()
            return uid

    def folder(self, user: str, name: str) -> Folder | None:
        return self.folders.get((user, _folder_key(name)))

    @contextmanager
    def serve(self) -> Iterator[tuple[str, int]]:
        """Listen on 127.0.0.1 (a free port); yields ``(host, port)``; closes every session."""
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                _Session(fake, self.connection, self.rfile).run()

        server = _Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, name="fake-imap", daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", int(server.server_address[1])
        finally:
            server.shutdown()
            server.close_sessions()
            server.server_close()
            thread.join(10)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sessions: set[socket.socket] = set()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.sessions.add(request)
        super().process_request(request, client_address)

    def close_sessions(self) -> None:
        for sock in list(self.sessions):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _folder_key(name: str) -> str:
    return "INBOX" if name.upper() == "INBOX" else name


def _unquote(token: bytes) -> str:
    text = token.decode("utf-8", "replace")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _in_set(uid: int, spec: str, largest: int) -> bool:
    """RFC 3501 sequence-set over UIDs: ``1,4:7,9:*``; ``*`` is the largest UID in the folder."""
    for part in spec.split(","):
        lo_s, _, hi_s = part.partition(":")
        lo = largest if lo_s == "*" else int(lo_s)
        hi = lo if not hi_s else (largest if hi_s == "*" else int(hi_s))
        if min(lo, hi) <= uid <= max(lo, hi):
            return True
    return False


class _Session:
    def __init__(self, fake: FakeImap, sock: socket.socket, rfile: object) -> None:
        self.fake, self.sock, self.rfile = fake, sock, rfile
        self.user: str | None = None
        self.box: Folder | None = None
        self.read_only = True
        self.seen_exists = 0

    def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\r\n")

    def readline(self) -> bytes:
        return self.rfile.readline(65536)  # type: ignore[attr-defined, no-any-return]

    def run(self) -> None:
        self.send(f"* OK [CAPABILITY {CAPABILITIES}] ClientHub fake IMAP ready")
        while True:
            try:
                line = self.readline()
            except OSError:
                return
            if not line:
                return
            parts = line.rstrip(b"\r\n").split(b" ", 2)
            if len(parts) < 2:
                self.send(b"* BAD Missing tag or command")
                continue
            tag, command = parts[0].decode(), parts[1].decode().upper()
            args = parts[2] if len(parts) > 2 else b""
            if command == "UID" and args:
                sub, _, args = args.partition(b" ")
                command = f"UID {sub.decode().upper()}"
            self.fake.commands.append(command)
            try:
                if not self.dispatch(tag, command, args):
                    return
            except (ValueError, IndexError):
                self.send(f"{tag} BAD Invalid arguments to {command}")
            except OSError:
                return

    def dispatch(self, tag: str, command: str, args: bytes) -> bool:
        """Answer one command; False ends the session."""
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {CAPABILITIES}")
            self.send(f"{tag} OK CAPABILITY completed")
        elif command == "NOOP":
            self.announce()
            self.send(f"{tag} OK NOOP completed")
        elif command == "LOGOUT":
            self.send("* BYE Logging out")
            self.send(f"{tag} OK LOGOUT completed")
            return False
        elif command == "LOGIN":
            self.login(tag, _TOKEN.findall(args))
        elif self.user is None:
            self.send(f"{tag} BAD {command} is not valid before LOGIN")
        elif command in ("SELECT", "EXAMINE"):
            self.select(tag, _unquote(_TOKEN.findall(args)[0]), read_only=command == "EXAMINE")
        elif self.box is None:
            self.send(f"{tag} BAD {command} needs a selected folder")
        elif command == "UID SEARCH":
            self.search(tag, args.decode().upper().split())
        elif command == "UID FETCH":
            spec, _, items = args.decode().partition(" ")
            self.fetch(tag, spec, items.strip().strip("()").upper().split())
        elif command == "IDLE":
            self.idle(tag)
        else:
            self.send(f"{tag} BAD Unknown or unsupported command {command}")
        return True

    def login(self, tag: str, tokens: list[bytes]) -> None:
        user, password = _unquote(tokens[0]), _unquote(tokens[1])
        with self.fake.lock:
            known = self.fake.users.get(user)
        if known is None or known != password:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
            return
        self.user = user
        self.send(f"{tag} OK [CAPABILITY {CAPABILITIES}] Logged in")

    def select(self, tag: str, name: str, *, read_only: bool) -> None:
        assert self.user is not None
        with self.fake.lock:
            box = self.fake.folder(self.user, name)
            exists = len(box.messages) if box else 0
        if box is None:
            self.box = None
            self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist: {name}")
            return
        self.box, self.read_only, self.seen_exists = box, read_only, exists
        self.send(f"* FLAGS {SYSTEM_FLAGS}")
        permanent = "()" if read_only else SYSTEM_FLAGS
        self.send(f"* OK [PERMANENTFLAGS {permanent}] Flags permitted.")
        self.send(f"* {exists} EXISTS")
        self.send("* 0 RECENT")
        self.send(f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid")
        self.send(f"* OK [UIDNEXT {box.uidnext}] Predicted next UID")
        mode = "READ-ONLY" if read_only else "READ-WRITE"
        verb = "EXAMINE" if read_only else "SELECT"
        self.send(f"{tag} OK [{mode}] {verb} completed")

    def _messages(self) -> list[Message]:
        assert self.box is not None
        with self.fake.lock:
            return list(self.box.messages)

    def search(self, tag: str, keys: list[str]) -> None:
        messages = self._messages()
        largest = messages[-1].uid if messages else 0
        if keys == ["ALL"] or not keys:
            found = messages
        elif len(keys) == 2 and keys[0] == "UID":
            found = [m for m in messages if largest and _in_set(m.uid, keys[1], largest)]
        else:
            self.send(f"{tag} BAD Unsupported search keys: {' '.join(keys)}")
            return
        self.send(("* SEARCH " + " ".join(str(m.uid) for m in found)).rstrip())
        self.send(f"{tag} OK SEARCH completed")

    def fetch(self, tag: str, spec: str, items: list[str]) -> None:
        known = {"UID", "FLAGS", "RFC822.SIZE", "BODY[]", "BODY.PEEK[]", "RFC822"}
        if not items or any(i not in known for i in items):
            self.send(f"{tag} BAD Unsupported FETCH items: {' '.join(items)}")
            return
        messages = self._messages()
        largest = messages[-1].uid if messages else 0
        for seq, msg in enumerate(messages, start=1):
            if not largest or not _in_set(msg.uid, spec, largest):
                continue
            if not self.read_only and ("BODY[]" in items or "RFC822" in items):
                msg.flags.add("\\Seen")  # a non-PEEK body fetch marks the message read
            parts = [f"UID {msg.uid}"]
            if "FLAGS" in items:
                parts.append(f"FLAGS ({' '.join(sorted(msg.flags))})")
            if "RFC822.SIZE" in items:
                parts.append(f"RFC822.SIZE {len(msg.raw)}")
            name = "RFC822" if "RFC822" in items else "BODY[]"
            if name == "RFC822" or "BODY[]" in items or "BODY.PEEK[]" in items:
                head = f"* {seq} FETCH ({' '.join(parts)} {name} {{{len(msg.raw)}}}"
                self.sock.sendall(head.encode() + b"\r\n" + msg.raw + b")\r\n")
            else:
                self.send(f"* {seq} FETCH ({' '.join(parts)})")
        self.send(f"{tag} OK FETCH completed")

    def announce(self) -> bool:
        """``* n EXISTS`` when the folder grew since the client last heard; True if it did."""
        exists = len(self._messages())
        if exists == self.seen_exists:
            return False
        self.seen_exists = exists
        self.send(f"* {exists} EXISTS")
        return True

    def idle(self, tag: str) -> None:
        self.send("+ idling")
        while True:
            with self.fake.lock:
                self.fake.lock.wait(0.05)
            self.announce()
            # DONE can only follow our "+": it is on the socket, not already in rfile's buffer.
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable:
                line = self.readline()
                if not line:
                    raise OSError("client went away during IDLE")
                if line.strip().upper() == b"DONE":
                    self.send(f"{tag} OK IDLE terminated")
                    return
                self.send(f"{tag} BAD Expected DONE")
                return
