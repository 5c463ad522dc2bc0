""" "Test the draft" in the background, so that the page can show how far it got.

Deciding 20,000 appeals twice takes tens of seconds on a small machine: in one request the
admin would stare at a spinner, and a proxy's timeout could cut it off. The start request
returns at once with a token; a thread reads the appeals in chunks (hub/storage/routing_sample.py)
and counts what it has decided; the page asks for the progress every half second (htmx) and
gets the result when it is done.

Runs live in this process's memory. With several web processes behind a proxy a poll may reach
a process that never heard of the token: that process starts the same test under the same token
(same draft, same appeals, so the same result), and whichever finishes first answers. Tokens are
unguessable and bound to the user who holds them; finished runs are forgotten after a while.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub.db import session_scope
from hub.storage import routing_sample, rulesets
from hub.ui import draft_test, drafts

log = logging.getLogger("clienthub.ui")

CHUNK = 1000  # appeals read per query: a bounded amount of memory, progress between chunks
MAX_RUNNING = 2  # per process: each run keeps a core busy
KEEP_SECONDS = 600  # a finished run's result stays this long for its polls
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


class Busy(RuntimeError):
    """Too many tests are running in this process; the user should retry in a minute."""


@dataclass
class DraftRun:
    token: str
    owner: str
    size: int
    state: str = "starting"  # starting → running → done | failed
    total: int = 0
    done: int = 0
    draft_id: int | None = None
    published_id: int | None = None
    result: draft_test.Comparison | None = None
    error: str | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


_runs: dict[str, DraftRun] = {}
_lock = threading.Lock()


def valid_token(token: str) -> bool:
    return bool(TOKEN.fullmatch(token))


def start(engine: Engine, *, owner: str, size: int, token: str | None = None) -> DraftRun:
    """A new run in a background thread, or the user's run already known under ``token``."""
    with _lock:
        _forget_old()
        if token is not None and (known := _runs.get(token)) is not None:
            return known
        if sum(not r.finished for r in _runs.values()) >= MAX_RUNNING:
            raise Busy("сейчас уже идут другие проверки черновика: повторите через минуту")
        run = DraftRun(token=token or secrets.token_urlsafe(24), owner=owner, size=size)
        _runs[run.token] = run
    threading.Thread(
        target=_work, args=(engine, run), name="draft-test", daemon=True
    ).start()  # fmt: skip
    return run


def get(token: str) -> DraftRun | None:
    with _lock:
        return _runs.get(token)


def _forget_old() -> None:
    now = time.monotonic()
    for token, run in list(_runs.items()):
        if run.finished_at is not None and now - run.finished_at > KEEP_SECONDS:
            del _runs[token]


class _NothingToTest(RuntimeError):
    pass


def _work(engine: Engine, run: DraftRun) -> None:
    """Compile both versions, then decide the window's appeals chunk by chunk; no transaction
    is held while deciding (a long read would pin PostgreSQL's snapshot and SQLite's WAL)."""
    try:
        with session_scope(engine, read_only=True) as s:
            draft, published = drafts.working_draft(s), rulesets.get_published(s)
            if draft is None or published is None:
                raise _NothingToTest("нужны черновик и действующая версия")
            run.draft_id, run.published_id = draft.id, published.id
            current = drafts.compiled_version(s, published)
            candidate = drafts.compiled_version(s, draft)
            counts = draft_test.open_counts(s, candidate.model)
            window = routing_sample.latest_window(s, run.size)
        comparer = draft_test.Comparer(current, candidate, counts)
        run.total = window.count if window else 0
        run.state = "running"
        after = window.first_id - 1 if window else 0
        while window is not None and run.done < window.count:
            with session_scope(engine, read_only=True) as s:
                rows = routing_sample.rows_after(s, window, after, CHUNK)
            if not rows:
                break
            for row in rows:
                comparer.add(row)
                run.done += 1
            after = rows[-1].id
        run.result = comparer.finish()
        run.total = run.done  # appeals the window lost meanwhile (none are ever unrouted)
        run.state = "done"
    except Exception as exc:
        if not isinstance(exc, _NothingToTest):
            log.exception("test of the draft failed")
        run.error = str(exc) or type(exc).__name__
        run.state = "failed"
    finally:
        run.finished_at = time.monotonic()
